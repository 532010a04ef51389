"""The load generator's parts: a lean Socket.IO client and process readings.

One asyncio process holds thousands of connections: each client is a bare ``websockets``
connection speaking just enough Engine.IO v4 / Socket.IO v5 to connect, send a few
events and hand every event frame (unparsed) to a callback. No per-client thread, no
JSON parsing of figures, loopback only.
"""

import asyncio
import os
import resource
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import websockets

CONNECT_CONCURRENCY = 200  # handshakes in flight at once

OnEvent = Callable[[str, float], None]  # (raw '42[...]' frame, receipt time.time())


def socketio_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"


def event_frame(event: str, payload_json: str) -> str:
    """A Socket.IO EVENT frame without an ack id, as a client sends it."""
    return f'42["{event}",{payload_json}]'


class LeanClient:
    """With ``go``, the client connects, then waits for it before sending its frames:
    a crowd is connected before anything is asked for, so a busy server cannot stall
    the handshakes, and every client starts at the same time."""

    def __init__(self, on_event: OnEvent, go: asyncio.Event | None = None) -> None:
        self.on_event = on_event
        self.go = go
        self.ready = asyncio.Event()

    async def run(self, url: str, frames: Sequence[str], stop: asyncio.Event) -> None:
        # close_timeout: a saturated server answers a close late; do not wait 10 s for it.
        async with websockets.connect(
            url, max_size=None, compression=None, ping_interval=None, close_timeout=1
        ) as ws:
            await ws.recv()  # 0{...}: open
            await ws.send("40")
            await ws.recv()  # 40{...}: connected
            if self.go is not None:
                self.ready.set()
                await self.go.wait()
            for frame in frames:
                await ws.send(frame)
            self.ready.set()
            # No timeout per receive: on Python 3.11 ``wait_for`` costs a task per
            # message. ``Crowd.close`` cancels the clients instead.
            async for message in ws:
                if stop.is_set():
                    break
                if message == "2":
                    await ws.send("3")  # pong
                elif isinstance(message, str) and message.startswith("42"):
                    self.on_event(message, time.time())


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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted samples fall (nan when empty)."""
    if not ordered:
        return float("nan")
    return ordered[min(max(int(len(ordered) * fraction + 0.5) - 1, 0), len(ordered) - 1)]
