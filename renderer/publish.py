"""Publishing a render on its rooms' channels, where someone watches them.

Each room has a channel of its own (``Keys.room_channel``), to which only the gateways
with a client in the room subscribe; a message is the Socket.IO event packet itself
(``common.messages.event_packet``), which a gateway relays unparsed. A render goes out
as up to three messages, in one round trip, the delta first:

- the delta room (the web page): the small ``bars`` update, always, since a page may
  join at any moment; a symbol's first render, with nothing to be a delta from, goes
  there as a full ``figure``;
- the figure room: the full figure, and the article's ``graph_plot`` room: the figure
  as a JSON string; each only while some gateway subscribes to it (``PUBSUB NUMSUB``,
  asked once per round for every symbol of the round), and at most once per
  ``RTPLOT_FULL_FIGURE_EVERY`` seconds per room.

The renderer stores the snapshot before it asks who watches, and a gateway subscribes
to a room before it reads the snapshot, so a subscriber the count missed reads a
snapshot at least as new as the update it was not sent.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from common.keys import Keys
from common.messages import (
    BARS,
    FIGURE,
    GRAPH_PLOT,
    delta_room,
    event_packet,
    figure_room,
    graph_plot_payload,
    legacy_room,
)
from renderer import metrics


@dataclass(frozen=True)
class Render:
    """One render's JSON, as the publisher needs it."""

    symbol: str
    payload_json: bytes  # the `figure` event payload {symbol, seq, figure}
    figure_json: bytes  # the figure alone
    delta_json: bytes | None  # the `bars` event payload, None for a symbol's first render


class Publisher(Protocol):
    def watched(self, symbols: Iterable[str]) -> set[str]: ...

    def publish(self, render: Render, watched: set[str]) -> None: ...


def full_rooms(symbol: str) -> list[str]:
    """The rooms that are sent whole figures."""
    return [figure_room(symbol), legacy_room(symbol)]


@dataclass
class RoomPublisher:
    client: "redis.Redis"
    keys: Keys
    full_figure_every: float = 0.0  # seconds between whole figures to a room; 0: every render
    _last_full: dict[str, float] = field(default_factory=dict)  # room -> when last sent

    def watched(self, symbols: Iterable[str]) -> set[str]:
        """The rooms, among the symbols' whole-figure rooms, with a subscriber now."""
        rooms = [room for symbol in symbols for room in full_rooms(symbol)]
        if not rooms:
            return set()
        counts = self.client.pubsub_numsub(*(self.keys.room_channel(r) for r in rooms))
        return {room for room, (_, count) in zip(rooms, counts, strict=True) if count}

    def publish(self, render: Render, watched: set[str]) -> None:
        """Raises ``redis.RedisError`` if nothing could be published, so the renderer
        leaves the change unacknowledged and it is rendered again. ``watched`` are the
        whole-figure rooms to send the figure to."""
        symbol = render.symbol
        pipe = self.client.pipeline(transaction=False)
        if render.delta_json is not None:
            self._publish(pipe, delta_room(symbol), BARS, render.delta_json)
        else:
            self._publish(pipe, delta_room(symbol), FIGURE, render.payload_json)
        now = time.monotonic()
        for room in full_rooms(symbol):
            if room not in watched:
                continue
            if now - self._last_full.get(room, -1e9) < self.full_figure_every:
                continue
            self._last_full[room] = now
            if room == figure_room(symbol):
                self._publish(pipe, room, FIGURE, render.payload_json)
            else:
                self._publish(pipe, room, GRAPH_PLOT, graph_plot_payload(render.figure_json))
        try:
            pipe.execute()
        except redis.RedisError:
            metrics.PUBLISH_ERRORS.inc()
            raise

    def _publish(self, pipe: "redis.client.Pipeline", room: str, event: str, data: bytes) -> None:
        packet = event_packet(event, data)
        pipe.publish(self.keys.room_channel(room), packet)
        metrics.PUBLISHED_BYTES.labels(event).inc(len(packet))
