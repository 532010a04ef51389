"""Publishing a render on the gateways' Socket.IO Redis message queue.

Every gateway's python-socketio Redis manager relays what arrives on the channel to its
clients in the named room, so one publish reaches every subscriber on every gateway. A
message here is exactly what python-socketio's ``RedisManager.emit`` publishes, built
around JSON the renderer has already encoded: ``emit`` would encode the 15 kB figure
again, after walking every value in it looking for binary data, and publishing cost
more than rendering. A render's three messages go out in one round trip.
tests/test_publish.py holds this format to python-socketio's own.
"""

import uuid
from typing import Protocol

import orjson
import redis

from common.messages import BARS, FIGURE, GRAPH_PLOT, delta_room, figure_room, legacy_room
from renderer import metrics


class Publisher(Protocol):
    def publish(
        self, symbol: str, payload_json: bytes, figure_json: bytes, delta_json: bytes | None
    ) -> None: ...


def queue_message(event: str, room: str, data_json: bytes, host_id: str) -> bytes:
    """python-socketio's message-queue ``emit`` of one JSON argument to a room."""
    return (
        b'{"method":"emit","event":%b,"data":[%b],"binary":false,"namespace":"/",'
        b'"room":%b,"skip_sid":null,"callback":null,"host_id":%b}'
    ) % (orjson.dumps(event), data_json, orjson.dumps(room), orjson.dumps(host_id))


class SocketIOPublisher:
    def __init__(self, client: "redis.Redis", channel: str) -> None:
        self.client = client
        self.channel = channel
        self.host_id = uuid.uuid4().hex  # as a manager's: gateways skip their own

    def publish(
        self, symbol: str, payload_json: bytes, figure_json: bytes, delta_json: bytes | None
    ) -> None:
        """Raises ``redis.RedisError`` if the messages could not be published, so the
        renderer leaves the change unacknowledged and it is rendered again."""
        pipe = self.client.pipeline(transaction=False)
        # Delta subscribers (the web page) first. A render with nothing to be a delta
        # from (the symbol's first) reaches them as a full figure, their snapshot.
        if delta_json is not None:
            pipe.publish(self.channel, self._message(BARS, delta_room(symbol), delta_json))
        else:
            pipe.publish(self.channel, self._message(FIGURE, delta_room(symbol), payload_json))
        pipe.publish(self.channel, self._message(FIGURE, figure_room(symbol), payload_json))
        # The article's client JSON.parse()s a string, so it gets the figure as one.
        legacy = orjson.dumps(figure_json.decode())
        pipe.publish(self.channel, self._message(GRAPH_PLOT, legacy_room(symbol), legacy))
        try:
            pipe.execute()
        except redis.RedisError:
            metrics.PUBLISH_ERRORS.inc()
            raise

    def _message(self, event: str, room: str, data_json: bytes) -> bytes:
        return queue_message(event, room, data_json, self.host_id)
