"""The Socket.IO protocol: event names, room names, payload shapes, JSON codec.

Client -> server:  ``subscribe`` ``{"symbol": ..., "updates": "figure" | "delta"}`` and
                   optionally a view (``chart``, ``timeframe``, ``indicators``, ``volume``:
                   common.views),
                   ``unsubscribe`` / ``snapshot`` ``{"symbol": ...}`` (all acknowledged),
                   ``ping_graph`` ``{"symbol": ...}`` (the article's client).
Server -> client:  ``figure`` ``{"symbol", ["view",] "seq", "epoch", "figure"}``,
                   ``bars`` ``{"symbol", ["view",] "seq", "base_seq", "epoch", "start",
                   ["head",] "bars", "style"}``,
                   ``graph_plot`` the figure as a JSON *string* (the article's client).

Rooms: the default view keeps ``figure:AAPL``, ``bars:AAPL`` and ``graph_plot:AAPL``;
another view's rooms carry its key: ``figure:AAPL@candles.5m.vol``.
"""

from typing import Any, TypedDict

import orjson

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
FIGURE = "figure"
BARS = "bars"  # the small update, for clients that subscribed with "updates": "delta"
SNAPSHOT = "snapshot"  # a client's request for the current figure (after a seq gap)
PING_GRAPH = "ping_graph"  # the article's request event
GRAPH_PLOT = "graph_plot"  # the article's reply event, payload is a JSON string


def figure_room(symbol: str) -> str:
    return f"figure:{symbol}"


def delta_room(symbol: str) -> str:
    return f"bars:{symbol}"


UPDATE_MODES = {"figure": figure_room, "delta": delta_room}


def legacy_room(symbol: str) -> str:
    return f"graph_plot:{symbol}"


def view_room(room: str, view_key: str) -> str:
    """A room of the default view, for the view with this key: ``bars:AAPL@candles.5m``."""
    return f"{room}@{view_key}" if view_key else room


def room_view(room: str) -> str:
    """The view key a room is for ("" for the default view's rooms)."""
    return room.partition("@")[2]


class FigurePayload(TypedDict):
    symbol: str
    seq: int
    figure: dict[str, Any]


def event_packet(event: str, payload_json: bytes) -> bytes:
    """A Socket.IO EVENT on the default namespace whose one argument is JSON already, as
    the packet's text: ``2["figure",{...}]``. This is what the renderer publishes on a
    room's channel, and what a gateway relays, unparsed, inside an Engine.IO message
    (a WebSocket frame reads ``42["figure",{...}]``)."""
    return b'2["%b",%b]' % (event.encode(), payload_json)


def graph_plot_payload(figure_json: bytes) -> bytes:
    """The article's ``graph_plot`` argument: the figure as a JSON *string*, encoded."""
    return orjson.dumps(figure_json.decode())


def ok_ack(symbol: str) -> dict[str, Any]:
    return {"ok": True, "symbol": symbol}


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
