"""The gateway's client managers: python-socketio's pub/sub manager, with a channel per
room for rtplot's own updates.

python-socketio's pub/sub manager leaves two seams, ``_publish`` and ``_listen``; these
managers fill them in on Redis, as its ``RedisManager`` does, with one difference. Its
manager listens to one channel, so every gateway receives every update of every symbol
and drops those for rooms it has no client in. Here the listener also subscribes to
the channel of each room in use on this gateway (gateway.channels batches that), and
relays what arrives there, a ready-made Socket.IO packet, to the room's clients
(gateway.membership) without parsing it. A gateway holding no client of a symbol
receives none of its bytes.

The stock channel stays: what any process emits through python-socketio's own
``RedisManager(url, write_only=True).emit(...)`` arrives there and is handled by
python-socketio as usual, to python-socketio's rooms, which follow the membership
(gateway.internals.rooms).

The listener reads what has arrived together, up to ``BATCH`` updates, before relaying
any of it, and relays it in one go (gateway.internals.outbox): a client watching
several of those rooms gets their updates in one write. A message on the stock channel
ends what goes in one write, so that everything relayed before it has been written
when python-socketio handles it, as before.

The listener reconnects by itself, within a second, and subscribes again to every room
in use; a connection that stops answering is noticed by its own PING.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeAlias

import redis
import redis.asyncio
from engineio import packet as eio_packet
from socketio.async_pubsub_manager import AsyncPubSubManager
from socketio.pubsub_manager import PubSubManager

from common.connection import connect, connect_async, connect_listener, connect_listener_async
from common.contract.keys import Keys
from common.contract.packets import packet_event
from common.contract.rooms import Room
from common.settings import Settings
from gateway import metrics
from gateway.channels import SUBSCRIBE, UNSUBSCRIBE, ChannelBook
from gateway.internals.outbox import Outbox, Writes
from gateway.internals.rooms import LibraryRooms
from gateway.membership import Membership

log = logging.getLogger("rtplot.gateway")

LISTEN_TICK = 1.0  # seconds a read waits before the listener looks at its connection
PING_AFTER = 5.0  # seconds of silence before the listener asks Redis whether it is there
PONG_WITHIN = 5.0  # seconds Redis has to answer before the connection counts as dead
RECONNECT_FIRST, RECONNECT_MAX = 0.1, 1.0  # seconds: the wait doubles, but never past 1 s
# Messages read before relaying: what has already arrived, up to this many. Bounded so
# the first of a long burst waits for the relay of at most this many (microseconds each
# per recipient) before its frames are written.
BATCH = 64

Message: TypeAlias = dict[str, Any]  # as redis-py's PubSub.get_message returns it


class Backoff:
    def __init__(self) -> None:
        self.delay = RECONNECT_FIRST

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, RECONNECT_MAX)
        return delay

    def reset(self) -> None:
        self.delay = RECONNECT_FIRST


class RelayCore(LibraryRooms):
    """What both managers share: the rooms in use, their subscriptions, the relay."""

    def setup_relay(self, settings: Settings) -> None:
        self.max_queued = settings.max_queued
        self.keys = Keys(settings.key_prefix)
        self.room_prefix = self.keys.room_channels.encode()
        self.stock_channel = self.keys.socketio_channel.encode()
        self.book = ChannelBook()
        self.membership = Membership(
            on_first=self._room_in_use,
            on_last=self._room_out_of_use,
            on_subscribed=self.follow_enter,
            on_unsubscribed=self.follow_leave,
            on_viewers=metrics.set_viewers,
        )
        self.started = False  # the listener was started
        self.listening = False  # ... and is subscribed on a live connection
        self._heard = self._pinged = 0.0
        self._flush_due = False
        self._relayed: list[tuple[str, float]] = []  # (event, started) waiting for a write

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        self.outbox = Outbox(server.eio, self.max_queued)

    def listener_ok(self) -> bool:
        """Listening, or not started yet on the public path (it starts with the first
        client, before anything needs relaying)."""
        return self.listening or not self.started

    # -- rooms in use ---------------------------------------------------------------

    def _room_in_use(self, room: Room) -> None:
        self.book.want(room)
        self._schedule_flush()

    def _room_out_of_use(self, room: Room) -> None:
        self.book.unwant(room)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self.book.pending() and not self._flush_due:
            self._flush_due = True
            self._start_flush()

    def _start_flush(self) -> None:
        raise NotImplementedError

    def _batch(self) -> tuple[list[str], list[str]]:
        self._flush_due = False
        subscribe, unsubscribe = self.book.batch()
        channel = self.keys.channel
        return [channel(r) for r in subscribe], [channel(r) for r in unsubscribe]

    # -- what the listener hears ----------------------------------------------------

    def _connected(self) -> None:
        self.book.connect()
        self.listening = True
        self._heard, self._pinged = time.monotonic(), 0.0

    def _disconnected(self, error: Exception, retry_in: float) -> None:
        if self.listening:
            log.warning(
                "message queue listener lost Redis; reconnecting",
                extra={"error": str(error), "retry_in": retry_in},
            )
        self.listening = False
        self.book.disconnect()

    def _due_ping(self) -> bool:
        """After a silent read: True when it is time to PING; raises when a PING went
        unanswered (a connection that died without closing)."""
        now = time.monotonic()
        if self._pinged:
            if now - self._pinged > PONG_WITHIN:
                raise redis.ConnectionError("Redis did not answer the listener's PING")
            return False
        if now - self._heard > PING_AFTER:
            self._pinged = now
            return True
        return False

    def _relay_batch(self, batch: list[Message]) -> Iterator[tuple[list[Any], bytes | None]]:
        """Relays messages read together, each client's frames in one write. Yields
        (sends to await, then a stock message for python-socketio or None) at each stock
        message and at the end: what came before it is written when it is yielded."""
        metrics.LISTENER_BATCH.observe(len(batch))
        writes = Writes() if len(batch) > 1 else None  # one update: written as it goes
        sends = []
        for message in batch:
            stock, sending = self._dispatch(message, writes)
            if sending is not None:
                sends.append(sending)
            if stock is not None:
                self._write(writes)
                yield sends, stock
                sends = []
        self._write(writes)
        yield sends, None

    def _write(self, writes: Writes | None) -> None:
        if writes is None:
            return
        self.outbox.flush(writes)
        done = time.perf_counter()
        for event, started in self._relayed:
            metrics.EMIT_SECONDS.labels(event).observe(done - started)
        self._relayed.clear()

    def _dispatch(self, message: Message, writes: Writes | None = None) -> tuple[bytes | None, Any]:
        """(what python-socketio's listener should handle, a send to await)."""
        self._heard, self._pinged = time.monotonic(), 0.0
        kind, channel = message["type"], message["channel"] or b""
        if channel == self.stock_channel:
            return (message["data"], None) if kind == "message" else (None, None)
        room = self.keys.room_of(channel) if channel.startswith(self.room_prefix) else None
        if room is None:
            return None, None  # a PONG, or not ours
        if kind == "message":
            return None, self.relay(room, message["data"], writes)
        if kind in (SUBSCRIBE, UNSUBSCRIBE):
            self.book.confirmed(kind, room)
        return None, None

    def relay(
        self, room: Room, packet: bytes, writes: Writes | None = None
    ) -> Awaitable[None] | None:
        """One update to a room's clients on this gateway, as it was published; with
        ``writes``, its WebSocket frames wait there (and its time is observed) until
        ``_write``."""
        started = time.perf_counter()
        recipients = self.membership.recipients(room, [packet])
        sending = self.outbox.send(
            recipients, [eio_packet.Packet(eio_packet.MESSAGE, packet.decode())], writes
        )
        event = packet_event(packet)
        metrics.EVENTS_OUT.labels(event).inc(len(recipients))
        if writes is None:
            metrics.EMIT_SECONDS.labels(event).observe(time.perf_counter() - started)
        else:
            self._relayed.append((event, started))
        return sending


class AsyncRelayManager(RelayCore, AsyncPubSubManager):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        super().__init__(channel=Keys(settings.key_prefix).socketio_channel)
        self.setup_relay(settings)
        self.redis = connect_async(settings.redis_url)
        self.listener = connect_listener_async(settings.redis_url)
        self.pubsub: redis.asyncio.client.PubSub | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def initialize(self) -> None:
        self.started = True
        super().initialize()

    async def listen_room(self, room: Room, timeout: float) -> None:
        if self.book.ready(room):
            return
        ready = asyncio.Event()
        self.book.wait(room, ready)
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no subscription to room {room} within {timeout} s") from None
        finally:
            self.book.stop_waiting(room, ready)

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        subscribe, unsubscribe = self._batch()
        pubsub = self.pubsub
        try:
            if subscribe and pubsub is not None:
                await pubsub.subscribe(*subscribe)
            if unsubscribe and pubsub is not None:
                await pubsub.unsubscribe(*unsubscribe)
        except (redis.RedisError, OSError):
            pass  # the listener finds the connection gone and subscribes everything again

    async def _publish(self, data: Any) -> None:
        await self.redis.publish(self.channel, self.json.dumps(data))

    async def _read_arrived(
        self, pubsub: Any, first: Message
    ) -> tuple[list[Message], Exception | None]:
        """``first`` and what has arrived with it, without waiting; a connection lost
        meanwhile is returned, to be raised once what was read is relayed."""
        batch = [first]
        try:
            while len(batch) < BATCH and (message := await pubsub.get_message(timeout=0)):
                batch.append(message)
        except (redis.RedisError, OSError) as exc:
            return batch, exc
        return batch, None

    async def _listen(self) -> AsyncIterator[bytes]:
        backoff = Backoff()
        while True:
            pubsub = self.listener.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.pubsub = pubsub
                self._connected()
                await self._flush()
                backoff.reset()
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_TICK)
                    if message is None:
                        if self._due_ping():
                            await pubsub.ping()
                        continue
                    batch, lost = await self._read_arrived(pubsub, message)
                    for sends, stock in self._relay_batch(batch):
                        for sending in sends:
                            await sending
                        if stock is not None:
                            yield stock
                    if lost is not None:
                        raise lost
            except (redis.RedisError, OSError) as exc:
                self._disconnected(exc, backoff.delay)
            finally:
                self.pubsub = None
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff.next())


class RelayManager(RelayCore, PubSubManager):  # type: ignore[misc]
    """The same, for the eventlet gateway (blocking calls, green threads)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(channel=Keys(settings.key_prefix).socketio_channel)
        self.setup_relay(settings)
        self.redis = connect(settings.redis_url)
        self.listener_client = connect_listener(settings.redis_url)
        self.pubsub: redis.client.PubSub | None = None

    def initialize(self) -> None:
        self.started = True
        super().initialize()

    def listen_room(self, room: Room, timeout: float) -> None:
        if self.book.ready(room):
            return
        ready = self.server.eio.create_event()
        self.book.wait(room, ready)
        try:
            if not ready.wait(timeout):
                raise TimeoutError(f"no subscription to room {room} within {timeout} s")
        finally:
            self.book.stop_waiting(room, ready)

    def _start_flush(self) -> None:
        self.server.start_background_task(self._flush)

    def _flush(self) -> None:
        subscribe, unsubscribe = self._batch()
        pubsub = self.pubsub
        try:
            if subscribe and pubsub is not None:
                pubsub.subscribe(*subscribe)
            if unsubscribe and pubsub is not None:
                pubsub.unsubscribe(*unsubscribe)  # type: ignore[no-untyped-call]
        except (redis.RedisError, OSError):
            pass  # the listener finds the connection gone and subscribes everything again

    def _publish(self, data: Any) -> None:
        self.redis.publish(self.channel, self.json.dumps(data))

    def _read_arrived(self, pubsub: Any, first: Message) -> tuple[list[Message], Exception | None]:
        batch = [first]
        try:
            while len(batch) < BATCH and (message := pubsub.get_message(timeout=0)):
                batch.append(message)
        except (redis.RedisError, OSError) as exc:
            return batch, exc
        return batch, None

    def _listen(self) -> Iterator[bytes]:
        backoff = Backoff()
        while True:
            pubsub = self.listener_client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                self.pubsub = pubsub
                self._connected()
                self._flush()
                backoff.reset()
                while True:
                    message = pubsub.get_message(timeout=LISTEN_TICK)
                    if message is None:
                        if self._due_ping():
                            pubsub.ping()
                        continue
                    batch, lost = self._read_arrived(pubsub, message)
                    # Sends are done as each message is relayed: nothing to await.
                    for _, stock in self._relay_batch(batch):
                        if stock is not None:
                            yield stock
                    if lost is not None:
                        raise lost
            except (redis.RedisError, OSError) as exc:
                self._disconnected(exc, backoff.delay)
            finally:
                self.pubsub = None
                pubsub.close()
            self.server.sleep(backoff.next())
