"""The renderer's queue messages are python-socketio's own, byte for byte in meaning.

The renderer builds the message-queue ``emit`` around JSON it has already encoded; the
gateways' python-socketio managers must read it as if ``RedisManager.emit`` had sent it.
"""

from typing import Any

import orjson
import pytest
import socketio

from common.messages import BARS, FIGURE, GRAPH_PLOT, OrjsonCodec, delta_room, figure_room
from renderer.publish import queue_message


class CapturingManager(socketio.RedisManager):  # type: ignore[misc]
    """python-socketio's write-only manager, keeping what it would publish."""

    def __init__(self) -> None:
        super().__init__("redis://127.0.0.1:1/0", write_only=True, json=OrjsonCodec)
        self.sent: list[dict[str, Any]] = []

    def _publish(self, data: dict[str, Any]) -> None:
        self.sent.append(orjson.loads(OrjsonCodec.dumps(data)))


FIGURE_PAYLOAD = {"symbol": "AAPL", "seq": 7, "figure": {"data": [{"y": [1.5, 2]}], "layout": {}}}
DELTA = {"symbol": "AAPL", "seq": 7, "base_seq": 6, "bars": [[60, 1, 2, 0.5, 1.5, 10]]}


@pytest.mark.parametrize(
    ("event", "room", "data"),
    [
        (FIGURE, figure_room("AAPL"), FIGURE_PAYLOAD),
        (BARS, delta_room("AAPL"), DELTA),
        (GRAPH_PLOT, "graph_plot:AAPL", orjson.dumps(FIGURE_PAYLOAD["figure"]).decode()),
    ],
)
def test_a_queue_message_is_what_redis_manager_emit_publishes(
    event: str, room: str, data: Any
) -> None:
    manager = CapturingManager()
    manager.emit(event, data, room=room, namespace="/")
    theirs = manager.sent[0]
    ours = orjson.loads(queue_message(event, room, orjson.dumps(data), "renderer-1"))
    assert ours == {**theirs, "host_id": "renderer-1"}
