"""What a client asks for: the payloads of its events, validated, and the rooms they
name. A bad payload raises ``BadRequest``, whose message goes back in the ack."""

from typing import Any

from common.messages import UPDATE_MODES, legacy_room
from common.symbols import InvalidSymbol, normalize_symbol


class BadRequest(ValueError):
    """A request refused with this message in its ack; the connection stays usable."""


def requested_symbol(data: Any) -> str:
    """The symbol a ``subscribe``/``unsubscribe``/``snapshot``/``ping_graph`` payload
    names: ``{"symbol": "AAPL"}`` (or, leniently, the bare string ``"AAPL"``)."""
    if isinstance(data, dict):
        if "symbol" not in data:
            raise BadRequest('payload must be {"symbol": "<SYMBOL>"}')
        raw = data["symbol"]
    elif isinstance(data, str):
        raw = data
    else:
        raise BadRequest('payload must be {"symbol": "<SYMBOL>"}')
    try:
        return normalize_symbol(raw)
    except InvalidSymbol as exc:
        raise BadRequest(str(exc)) from None


def requested_updates(data: Any) -> str:
    """The update stream a ``subscribe`` asks for: "figure" (default) or "delta"."""
    mode = data.get("updates", "figure") if isinstance(data, dict) else "figure"
    if mode not in UPDATE_MODES:
        raise BadRequest('"updates" must be "figure" or "delta"')
    return str(mode)


def symbol_rooms(symbol: str) -> list[str]:
    """Every room of a symbol; a client's subscription to it lives in one at a time."""
    return [room(symbol) for room in UPDATE_MODES.values()] + [legacy_room(symbol)]
