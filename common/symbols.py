"""Ticker symbols: the one allowlist every service and client agrees on."""

import re

# Real Yahoo symbols: AAPL, BRK-B, ^GSPC, EURUSD=X, GC=F, RELIANCE.NS, 0700.HK, BTC-USD.
# An optional index caret, a letter or digit, then letters, digits, dots and dashes,
# then an optional "=X"-style suffix. Anything else is refused before it reaches a source.
_SYMBOL = re.compile(r"\^?[A-Z0-9][A-Z0-9.\-]{0,19}(=[A-Z]{1,3})?")
MAX_SYMBOL_LENGTH = 24


class InvalidSymbol(ValueError):
    """A symbol that is not a string matching the allowlist."""


def normalize_symbol(raw: object) -> str:
    """Return the canonical (upper-case, trimmed) symbol, or raise InvalidSymbol."""
    if not isinstance(raw, str):
        raise InvalidSymbol(f"symbol must be a string, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise InvalidSymbol("symbol is empty")
    # Checked before the regex so a megabyte of input costs nothing.
    if len(text) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbol(f"symbol is longer than {MAX_SYMBOL_LENGTH} characters")
    symbol = text.upper()
    if not _SYMBOL.fullmatch(symbol):
        raise InvalidSymbol(
            f"{text!r} is not a valid symbol (letters, digits, '.', '-', a leading '^' "
            "or a '=X' suffix)"
        )
    return symbol
