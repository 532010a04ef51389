"""The Socket.IO protocol: event names, room names, payload shapes, JSON codec.

Client -> server:  ``subscribe`` ``{"symbol": ..., "updates": "figure" | "delta"}`` and
                   optionally a view (``chart``, ``timeframe``, ``indicators``, ``volume``:
                   common.views),
                   ``unsubscribe`` / ``snapshot`` ``{"symbol": ...}`` (all acknowledged),
                   ``ping_graph`` ``{"symbol": ...}`` (the article's client),
                   ``history`` ``{"symbol", <view fields>, "before", "count", "after"}``:
                   the view's older bars, answered in its ack (common.contract.past).
Server -> client:  ``figure`` ``{"symbol", ["view",] "seq", "epoch", "figure"}``,
                   ``bars`` ``{"symbol", ["view",] "seq", "base_seq", "epoch", "start",
                   ["head",] "bars", "style"}``,
                   ``graph_plot`` the figure as a JSON *string* (the article's client).

Which clients get which events is common.contract.rooms'; how the renderer hands an
event to the gateways, common.contract.packets'.
"""

from typing import Any, TypedDict

import orjson

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
FIGURE = "figure"
BARS = "bars"  # the small update, for clients that subscribed with "updates": "delta"
SNAPSHOT = "snapshot"  # a client's request for the current figure (after a seq gap)
PING_GRAPH = "ping_graph"  # the article's request event
HISTORY = "history"  # a client's request for a view's older bars (common.contract.past)
GRAPH_PLOT = "graph_plot"  # the article's reply event, payload is a JSON string


class FigurePayload(TypedDict):
    symbol: str
    seq: int
    figure: dict[str, Any]


def graph_plot_payload(figure_json: bytes) -> bytes:
    """The article's ``graph_plot`` argument: the figure as a JSON *string*, encoded."""
    return orjson.dumps(figure_json.decode())


def ok_ack(symbol: str, resumed: bool | None = None) -> dict[str, Any]:
    """``resumed``: for a subscribe that asked to resume (``since``), whether it did."""
    if resumed is None:
        return {"ok": True, "symbol": symbol}
    return {"ok": True, "symbol": symbol, "resumed": resumed}


def error_ack(reason: str) -> dict[str, Any]:
    return {"ok": False, "error": reason}


class OrjsonCodec:
    """The ``json`` module interface python-socketio expects, backed by orjson.

    Socket.IO packets are text, so ``dumps`` returns ``str``; extra keyword arguments
    (``separators``) are accepted and ignored because orjson is always compact.
    """

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    @staticmethod
    def loads(raw: str | bytes, **_: Any) -> Any:
        return orjson.loads(raw)
