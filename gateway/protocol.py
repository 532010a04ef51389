"""The gateway's protocol logic, free of I/O, shared by the asyncio and eventlet servers."""

from typing import Any

import orjson

from common.messages import UPDATE_MODES, legacy_room
from common.symbols import InvalidSymbol, normalize_symbol

UNAVAILABLE = "temporarily unavailable, try again"


class BadRequest(ValueError):
    """A request refused with this message in its ack; the connection stays usable."""


def requested_symbol(data: Any) -> str:
    """The symbol a ``subscribe``/``unsubscribe``/``ping_graph`` payload names.

    Takes ``{"symbol": "AAPL"}`` (or, leniently, the bare string ``"AAPL"``).
    """
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


def rooms_to_leave(symbol: str, keep: str | None = None) -> list[str]:
    """Every room of a symbol but ``keep``: a subscription lives in one room at a time."""
    rooms = [room(symbol) for room in UPDATE_MODES.values()] + [legacy_room(symbol)]
    return [room for room in rooms if room != keep]


def figure_string(snapshot_payload: bytes) -> str:
    """The article's ``graph_plot`` payload: the figure alone, as a JSON string."""
    figure = orjson.loads(snapshot_payload)["figure"]
    return orjson.dumps(figure).decode()


class Subscriptions:
    """Which of this gateway's clients watch which symbol (rooms do the delivery;
    this is for re-stamping watched symbols and for metrics)."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, set[str]] = {}

    def add(self, sid: str, symbol: str) -> None:
        self.by_symbol.setdefault(symbol, set()).add(sid)

    def remove(self, sid: str, symbol: str) -> None:
        sids = self.by_symbol.get(symbol)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self.by_symbol[symbol]

    def remove_client(self, sid: str) -> None:
        for symbol in [s for s, sids in self.by_symbol.items() if sid in sids]:
            self.remove(sid, symbol)

    def symbols(self) -> list[str]:
        return list(self.by_symbol)

    def counts(self) -> dict[str, int]:
        return {symbol: len(sids) for symbol, sids in self.by_symbol.items()}
