"""The load generator: lean Socket.IO clients, a crowd of them, and its own CPU.

One process holds thousands of connections, and must cost little beside the gateway it
measures (a tenth of a core at 10,000 clients is the aim): each client is a bare asyncio
``Protocol`` (on uvloop when it is installed) speaking just enough WebSocket (RFC 6455),
Engine.IO v4 and Socket.IO v5 to connect, send a few events, answer pings and hand every
event frame, as bytes and unparsed, to a callback. No task or buffer copy per message,
no JSON parsing of figures, loopback only.
"""

import asyncio
import base64
import os
import resource
import struct
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from common.contract.packets import event_prefix

CONNECT_CONCURRENCY = 200  # handshakes in flight at once
CONNECT_TIMEOUT = 30.0  # seconds one client may take from TCP connect to Socket.IO connected

OnEvent = Callable[[bytes, float], None]  # (raw b'42[...]' payload, receipt time.time())


def socketio_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"


ENGINE_IO_MESSAGE = b"4"  # Engine.IO's packet type before every Socket.IO packet


def received_prefix(event: str) -> bytes:
    """What a frame of ``event`` from rtplot's gateway starts with: the renderer's packet
    (common.contract.packets), relayed unparsed as an Engine.IO message."""
    return ENGINE_IO_MESSAGE + event_prefix(event)


def event_frame(event: str, payload_json: str) -> str:
    """A Socket.IO EVENT frame without an ack id, as a client sends it."""
    return f'42["{event}",{payload_json}]'


def use_uvloop() -> bool:
    """The load generator's own event loop on uvloop, where installed (it is with uvicorn's
    standard extras): its cost per message is what keeps it off the gateway's core."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def masked(text: str | bytes) -> bytes:
    """A client's text frame: masked, as RFC 6455 requires of clients."""
    payload = text.encode() if isinstance(text, str) else text
    mask = os.urandom(4)
    # XOR with the mask, a machine word at a time.
    repeat = (mask * (len(payload) // 4 + 1))[: len(payload)]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(repeat, "big")).to_bytes(
        len(payload), "big"
    )
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 0xFE, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0xFF, size)
    return header + mask + body


class LeanProtocol(asyncio.Protocol):
    """One client's connection. ``client`` is told when it is connected and gets every
    event frame."""

    def __init__(self, client: "LeanClient", path: str, host: str) -> None:
        self.client, self.path, self.host = client, path, host
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport) or hasattr(transport, "write")
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.transport.write(request.encode())  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, text: str | bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked(text))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.close()
                return
            del buffer[: end + 4]
            self.upgraded = True
        start, size = 0, len(buffer)
        while size - start >= 2:
            opcode, length = buffer[start] & 0x0F, buffer[start + 1] & 0x7F
            head = 2
            if length == 126:
                if size - start < 4:
                    break
                length = int.from_bytes(buffer[start + 2 : start + 4], "big")
                head = 4
            elif length == 127:
                if size - start < 10:
                    break
                length = int.from_bytes(buffer[start + 2 : start + 10], "big")
                head = 10
            if size - start < head + length:
                break
            payload = bytes(buffer[start + head : start + head + length])
            start += head + length
            if opcode == 0x8:  # close
                self.close()
                break
            self.client.on_frame(self, payload)
        if start:
            del buffer[:start]


class LeanClient:
    """One Socket.IO client. With ``go``, it connects, then waits for it before sending
    its frames: a crowd is connected before anything is asked for, so a busy server
    cannot stall the handshakes, and every client starts at the same time."""

    def __init__(self, on_event: OnEvent, go: asyncio.Event | None = None) -> None:
        self.on_event = on_event
        self.go = go
        self.ready = asyncio.Event()
        self.frames: Sequence[str] = ()
        self.connected = asyncio.Event()

    def on_frame(self, protocol: LeanProtocol, payload: bytes) -> None:
        if payload.startswith(b"42"):
            self.on_event(payload, time.time())
        elif payload == b"2":
            protocol.send(b"3")  # pong
        elif payload.startswith(b"0{"):  # Engine.IO open
            protocol.send(b"40")
        elif payload.startswith(b"40"):  # Socket.IO connected
            self.connected.set()

    async def run(self, url: str, frames: Sequence[str], stop: asyncio.Event) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = parts.path + ("?" + parts.query if parts.query else "")
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: LeanProtocol(self, path, f"{host}:{port}"), host, port
        )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self.connected.wait()
            if self.go is not None:
                self.ready.set()
                await self.go.wait()
            for frame in frames:
                protocol.send(frame)
            self.ready.set()
            # Until the crowd closes or the server does: one wait, no task per message.
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([stopping, protocol.closed], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        finally:
            protocol.close()


class Crowd:
    """``count`` lean clients, each sent ``frames_for(i)`` once connected."""

    def __init__(
        self, url: str, count: int, frames_for: Callable[[int], Sequence[str]], on_event: OnEvent
    ) -> None:
        self.url = url
        self.frames_for = frames_for
        self.clients = [LeanClient(on_event) for _ in range(count)]
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, timeout: float = 120) -> int:
        """Opens every client (at most CONNECT_CONCURRENCY handshakes at once) and
        returns how many are subscribed when all are, or when ``timeout`` runs out."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def start(client: LeanClient, i: int) -> None:
            async with gate:
                task = asyncio.create_task(client.run(self.url, self.frames_for(i), self.stop))
                await asyncio.wait(
                    [task, asyncio.create_task(client.ready.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
            await task

        self._tasks = [asyncio.create_task(start(c, i)) for i, c in enumerate(self.clients)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(c.ready.is_set() for c in self.clients):
            await asyncio.sleep(0.2)
        return sum(c.ready.is_set() for c in self.clients)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def self_cpu() -> float:
    """This process's user + system CPU seconds so far (the load generator's own)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
