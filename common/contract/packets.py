"""What the renderer publishes on a room's channel and stores as a snapshot, for the
gateways: each format with the function that writes it and the one that reads it.

A channel's message is the Socket.IO packet itself, ``2["<event>",<payload>]``, which a
gateway relays unparsed inside an Engine.IO message (a WebSocket frame reads
``42["figure",{...}]``). A stored whole figure is its ``figure`` event payload,
``{"symbol", ["view",] "seq", "epoch", "figure"}``, built around the figure's JSON
without encoding it twice.
"""

import orjson

_EVENT_START = b'2["'
_EVENT_END = b'",'


def event_packet(event: str, payload_json: bytes) -> bytes:
    """A Socket.IO EVENT on the default namespace whose one argument is JSON already."""
    return b"%b%b%b%b]" % (_EVENT_START, event.encode(), _EVENT_END, payload_json)


def event_prefix(event: str) -> bytes:
    """What every ``event_packet`` of this event starts with."""
    return b"%b%b%b" % (_EVENT_START, event.encode(), _EVENT_END)


def packet_event(packet: bytes) -> str:
    """The event name of an ``event_packet`` (its payload is not parsed)."""
    start = len(_EVENT_START)
    return packet[start : packet.index(_EVENT_END, start)].decode()


def figure_payload(symbol: str, view: str, seq: int, epoch: str, figure_json: bytes) -> bytes:
    """The ``figure`` event payload, as ``orjson.dumps`` of the dict would give it."""
    view_field = b'"view":%b,' % orjson.dumps(view) if view else b""
    return b'{"symbol":%b,%b"seq":%d,"epoch":%b,"figure":%b}' % (
        orjson.dumps(symbol),
        view_field,
        seq,
        orjson.dumps(epoch),
        figure_json,
    )


def figure_of(payload: bytes) -> bytes:
    """The figure's JSON in a ``figure`` event payload (the article's client is sent the
    figure alone)."""
    return orjson.dumps(orjson.loads(payload)["figure"])
