import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.symbols import MAX_SYMBOL_LENGTH, InvalidSymbol, normalize_symbol

REAL = ["AAPL", "BRK-B", "^GSPC", "EURUSD=X", "RELIANCE.NS", "GC=F", "0700.HK", "BTC-USD"]


@pytest.mark.parametrize("symbol", REAL)
def test_real_yahoo_symbols_are_admitted(symbol: str) -> None:
    assert normalize_symbol(symbol) == symbol


def test_symbols_are_upper_cased_and_trimmed() -> None:
    assert normalize_symbol("  ril.ns ") == "RIL.NS"
    assert normalize_symbol("brk-b") == "BRK-B"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "AAPL MSFT",
        "AAPL;DROP",
        "../etc",
        "A" * (MAX_SYMBOL_LENGTH + 1),
        "^",
        "=X",
        "AAPL=XYZW",
        "<script>",
        "AA\nPL",
        "-AAPL",
        ".NS",
        "ÄPPLE",
        "AAPL*",
        "a\x00b",
    ],
)
def test_bad_symbols_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSymbol):
        normalize_symbol(bad)


@pytest.mark.parametrize("bad", [None, 1, 1.5, True, ["AAPL"], {"symbol": "AAPL"}, b"AAPL"])
def test_non_strings_are_refused_with_the_type_named(bad: object) -> None:
    with pytest.raises(InvalidSymbol, match=type(bad).__name__):
        normalize_symbol(bad)


def test_a_megabyte_of_input_is_refused_quickly() -> None:
    with pytest.raises(InvalidSymbol, match="longer than"):
        normalize_symbol("A" * 1_000_000)


@given(st.text(max_size=40))
def test_any_text_is_either_refused_or_a_clean_symbol(text: str) -> None:
    try:
        symbol = normalize_symbol(text)
    except InvalidSymbol:
        return
    assert symbol == symbol.upper().strip()
    assert 0 < len(symbol) <= MAX_SYMBOL_LENGTH
    assert set(symbol) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-^=")
    assert normalize_symbol(symbol) == symbol  # idempotent
