"""WebSocket clients of the asyncio gateway, written to directly (see ``gateway.internals``
for the terms of this reach).

python-engineio gives each WebSocket client a send queue, a writer task waiting on it, a
task per ping cycle and, under uvicorn, an ASGI ``send`` per packet that websockets turns
into a frame. Each update to each client went through all of them, and each idle
connection held them all (docs/benchmarks.md has what that cost, before and after).
Here, for a client that connects over WebSocket:

- a packet is framed and written to the connection's transport when it is sent, in the
  caller's turn of the event loop: the order of writes is the order of sends, so every
  client gets its packets (acks, pings, snapshots, updates) in the order python-engineio
  would have sent them, with no task and no queue in between;
- an update for many clients is framed once and the same bytes written to each (server
  frames are not masked, and compression is off);
- the updates that reach the gateway together go to each client in one write, its
  frames one after another (``outbox.Writes``): a system call per client per batch, not
  per update;
- a slow reader shows as the transport's buffer, not a queue: ``qsize`` counts the frames
  written since that buffer was last empty;
- one task pings every client when its ping is due, and drops one whose PONG does not
  come in time, instead of a task and a timer per client.

Everything else is python-engineio's: the socket object, its handshake, what it does
with what the client sends, closing. A client that arrives by long-polling and upgrades
keeps the library's path. tests/test_internals_websocket.py holds the frames a client
receives to those of the library's path, byte for byte.

Reaches: python-engineio ``Server._async['websocket']`` (the WebSocket driver, replaced
per server), ``AsyncSocket`` attributes (``queue``, ``connected``, ``upgraded``,
``schedule_ping``, ``last_ping``, ``closing``, ``closed``, ``receive``, ``close``;
``Server.sockets``, to drop a client's connection: ``drop``); and
uvicorn's WebSocket protocol, found as the owner of the ASGI ``send`` callable, for its
``transport``.
"""

import asyncio
import functools
import heapq
import itertools
import struct
import time
from typing import Any

from engineio import exceptions
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as LibraryWebSocket

from gateway import metrics

TEXT, BINARY = 0x81, 0x82  # a final frame of text, of bytes
PING_TICK = 0.25  # seconds between the pinger's looks at who is due


def frame(data: str | bytes) -> bytes:
    """One unmasked, uncompressed WebSocket frame (RFC 6455 §5.2), as a server sends."""
    if isinstance(data, str):
        payload, opcode = data.encode(), TEXT
    else:
        payload, opcode = data, BINARY
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", opcode, 126, size)
    else:
        header = struct.pack("!BBQ", opcode, 127, size)
    return header + payload


def transport_of(asgi_send: Any) -> Any:
    """The transport under an ASGI ``send`` callable of uvicorn's WebSocket protocols,
    or None. (uvloop's transports are not registered as asyncio's, hence no isinstance.)"""
    transport = getattr(getattr(asgi_send, "__self__", None), "transport", None)
    needed = ("write", "get_write_buffer_size", "is_closing", "abort")
    return transport if all(hasattr(transport, name) for name in needed) else None


class DirectSender:
    """Stands in for a WebSocket client's send queue: what is put is written at once."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.frames = 0  # written since the transport's buffer was last empty

    def write(self, data: bytes, frames: int = 1) -> None:
        """``data`` holds ``frames`` whole frames: one write, one system call."""
        if self.transport.is_closing():
            return
        if not self.transport.get_write_buffer_size():
            self.frames = 0
        self.frames += frames
        self.transport.write(data)

    def put_nowait(self, pkt: eio_packet.Packet | None) -> None:
        if pkt is None:  # the library's "stop writing": the connection is over
            self.transport.abort()
        else:
            self.write(frame(pkt.encode()))

    async def put(self, pkt: eio_packet.Packet | None) -> None:
        self.put_nowait(pkt)

    def qsize(self) -> int:
        return self.frames if self.transport.get_write_buffer_size() else 0

    def empty(self) -> bool:
        return True  # nothing ever waits here

    def get_nowait(self) -> Any:
        raise asyncio.QueueEmpty

    def task_done(self) -> None:
        pass

    async def join(self) -> None:
        pass


class Pinger:
    """Pings each client when due and drops one whose PONG does not come, from one task
    for every client: no task or timer per connection."""

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval, self.timeout = interval, timeout
        self.due: list[tuple[float, int, str, Any]] = []  # (when, tie-break, what, socket)
        self.task: asyncio.Task[None] | None = None
        self.order = itertools.count()

    def schedule(self, sock: Any) -> None:
        """python-engineio's ``schedule_ping``: a new cycle once the last was answered."""
        if sock.last_ping:
            sock.last_ping = None
            self._at(self.interval, "ping", sock)

    def watch(self, sock: Any) -> None:
        """A new session: its first PING is the library's; make sure it is answered."""
        self._at(self.interval + self.timeout + PING_TICK, "check", sock)

    def _at(self, delay: float, what: str, sock: Any) -> None:
        heapq.heappush(self.due, (time.monotonic() + delay, next(self.order), what, sock))
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PING_TICK)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                _, _, what, sock = heapq.heappop(self.due)
                if sock.closing or sock.closed:
                    continue
                if what == "ping":
                    sock.last_ping = time.time()
                    self._at(self.timeout + PING_TICK, "check", sock)
                    await sock.send(eio_packet.Packet(eio_packet.PING))
                elif sock.last_ping and time.time() - sock.last_ping > self.timeout:
                    # Silent past its ping timeout: the library's reader would have
                    # timed out here. The session ends as the connection drops.
                    sock.queue.transport.abort()


def drop(server: Any, eio_sid: str) -> bool:
    """End a WebSocket client's connection as a network failure would, so that it
    reconnects by itself: an Engine.IO CLOSE first would tell python-socketio's client
    not to (engine.io's ignores the packet and waits for the connection to end). False
    when the client is not on this path: the caller closes it the library's way."""
    sock = server.sockets.get(eio_sid)
    sender = getattr(sock, "queue", None)
    if not isinstance(sender, DirectSender):
        return False
    sender.transport.abort()  # the reader ends the session, as for a lost connection
    return True


class DirectWebSocket(LibraryWebSocket):  # type: ignore[misc]
    """python-engineio's ASGI WebSocket driver, running a WebSocket session itself."""

    pinger: Pinger | None = None  # one per server: see install()

    async def __call__(self, environ: dict[str, Any]) -> str:
        sock = getattr(self.handler, "__self__", None)
        transport = transport_of(environ["asgi.send"])
        if sock is None or sock.connected or transport is None or self.pinger is None:
            metrics.WEBSOCKET_SESSIONS.labels("library").inc()
            return str(await super().__call__(environ))  # an upgrade: the library's path
        metrics.WEBSOCKET_SESSIONS.labels("direct").inc()
        self.asgi_receive, self.asgi_send = environ["asgi.receive"], environ["asgi.send"]
        await self.asgi_send({"type": "websocket.accept"})
        release_handshake(self.asgi_send)
        await session(sock, self, DirectSender(transport), self.pinger)
        return ""


async def session(sock: Any, ws: DirectWebSocket, sender: DirectSender, pinger: Pinger) -> None:
    """python-engineio 4.15's ``AsyncSocket._websocket_handler`` for a client that
    connected over WebSocket, with ``sender`` in place of the queue and its writer."""
    sock.connected = sock.upgraded = True
    while not sock.queue.empty():  # what was sent before the handshake (the OPEN packet)
        pkt = sock.queue.get_nowait()
        sock.queue.task_done()
        if pkt is not None:
            sender.put_nowait(pkt)
    sock.queue = sender
    sock.schedule_ping = functools.partial(pinger.schedule, sock)
    pinger.watch(sock)
    server = sock.server
    while True:
        try:
            data = await ws.wait()  # a silent client is dropped by the pinger instead
        except (OSError, asyncio.CancelledError):
            break
        except Exception:  # the library ends the session on any error here too
            break
        if data is None:
            break
        if len(data) > server.max_http_buffer_size:
            break  # the library: "packet is too large"
        try:
            await sock.receive(eio_packet.Packet(encoded_packet=data))
        except exceptions.UnknownPacketError:
            pass
        except exceptions.SocketIsClosedError:
            server.logger.info("Receive error -- socket is closed")
            break
        except Exception:
            server.logger.exception("Unknown receive error")
    await ws.close()
    await sock.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


def release_handshake(asgi_send: Any) -> None:
    """What uvicorn keeps of a WebSocket's handshake once it is accepted: the request and
    response (their headers) and the headers in the ASGI scope. Nothing reads them after
    the accept, and each idle connection would hold them for its whole life."""
    protocol = getattr(asgi_send, "__self__", None)
    if protocol is None or not getattr(protocol, "handshake_complete", False):
        return
    protocol.request = protocol.response = None
    scope = getattr(protocol, "scope", None)
    if isinstance(scope, dict):
        scope["headers"] = []


def release_request(environ: dict[str, Any]) -> None:
    """The request python-socketio keeps per client (``Server.environ``), once the
    connect handler has read it; each idle connection would hold it for its whole life
    (python-engineio builds a class per request for its body). Nothing reads it later
    here."""
    environ.clear()


def install(eio: Any) -> None:
    """Use the direct path for this engine.io server's WebSocket clients."""

    class Driver(DirectWebSocket):
        pinger = Pinger(eio.ping_interval, eio.ping_timeout)

    eio._async = dict(eio._async, websocket=Driver)
