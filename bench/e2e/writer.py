"""The writer subprocess: the fetcher's part, once a second, and a probe on the queue.

It runs apart from the load generator so that neither its CPU nor its GIL is the clients'.
Spoken to in JSON lines (``Writer``): it says ``ready``, reads ``{start, ticks, warmup}``,
writes a tick a second on the wall clock from ``start``, waits (bounded) for the last
deltas on the queue, then answers ``{writes, published, cpu}``.
"""

import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson
import redis

from bench.e2e.market import SYMBOLS, WINDOW_MINUTES, Write, write_tick
from bench.loadgen import self_cpu
from common.bars import floor_minute
from common.contract.keys import Keys
from common.contract.packets import event_prefix
from common.contract.rooms import Mode, Room
from common.messages import BARS
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from rtplot.processes import LOG_TAIL, STOP_GRACE

ROOT = Path(__file__).resolve().parents[2]  # where `python -c` finds the bench package
DRAIN_SECONDS = 5.0  # most time given to the last writes to be published after writing
WRITER = "from bench.e2e.writer import writer_main; writer_main()"

Published = dict[tuple[str, int], float]  # (symbol, seq) -> when its delta hit the queue


class QueueProbe(threading.Thread):
    """Notes when each ``bars`` message appears on a delta room's channel, as a gateway
    with a client in that room receives it. A message is the Socket.IO packet
    ``2["bars",{...}]``; the rare other one (a symbol's first render is a whole figure)
    is told by its prefix and never parsed, so the probe holds the writer's GIL for
    microseconds at a time and barely delays a write."""

    PREFIX = event_prefix(BARS)

    def __init__(self, redis_url: str, symbols: list[str]) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        self.channels = [Keys().channel(Room(symbol, Mode.DELTA)) for symbol in symbols]
        self.pubsub.subscribe(*self.channels)
        self.stopping = threading.Event()
        self.published: Published = {}

    def wait_subscribed(self) -> None:
        confirmed = 0
        for _ in range(50):  # bounded: 50 x 0.1 s
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "subscribe":
                confirmed += 1
            if confirmed == len(self.channels):
                return
        raise RuntimeError("the queue probe could not subscribe")

    def run(self) -> None:
        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None or message["type"] != "message":
                continue
            received = time.time()
            data = message["data"]
            if data.startswith(self.PREFIX):
                delta = orjson.loads(data[len(self.PREFIX) : -1])
                self.published.setdefault((delta["symbol"], int(delta["seq"])), received)

    def close(self) -> None:
        """Idempotent; once it returns, ``published`` no longer changes."""
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=STOP_GRACE)
        self.pubsub.close()
        self.client.close()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.flush()


def writer_main() -> None:
    """``python -c WRITER REDIS_URL``, as ``Writer`` runs it; the ``cpu`` it answers is
    the seconds it spent on the measured ticks."""
    redis_url = sys.argv[1]
    client = redis.Redis.from_url(redis_url)
    probe = QueueProbe(redis_url, SYMBOLS)
    try:
        store = BarStore(client, Keys(), WINDOW_MINUTES)
        source = SyntheticSource()
        source.fetch({s: floor_minute(time.time()) for s in SYMBOLS}, time.time())  # caches
        probe.wait_subscribed()
        probe.start()
        _say({"ready": True})
        order = orjson.loads(sys.stdin.buffer.readline())
        writes: list[Write] = []
        cpu_start = self_cpu()
        for tick in range(order["ticks"]):
            time.sleep(max(0.0, order["start"] + tick - time.time()))
            if tick == order["warmup"]:
                cpu_start = self_cpu()
            writes += write_tick(store, source, SYMBOLS)
        cpu = self_cpu() - cpu_start
        # The renderer may coalesce writes, but the last of each symbol is always published.
        last = {(symbol, version) for symbol, version, _at in writes}
        last = {(s, v) for s, v in last if (s, v + 1) not in last}
        deadline = time.monotonic() + DRAIN_SECONDS
        while not last <= probe.published.keys() and time.monotonic() < deadline:
            time.sleep(0.05)
        probe.close()
        published = [[s, seq, at] for (s, seq), at in probe.published.items()]
        _say({"writes": writes, "published": published, "cpu": cpu})
    finally:
        probe.close()
        client.close()


class Writer:
    """The writer subprocess, spoken to in JSON lines. Started first, so it imports while
    the clients connect."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        self.process = process
        self.stderr = stderr

    @classmethod
    async def launch(cls, redis_url: str) -> "Writer":
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            redis_url,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=2**26,  # its one answer holds every write of the run
        )
        return cls(process, stderr)

    async def ready(self, timeout: float) -> None:
        await self._receive(timeout)

    def start(self, at: float, ticks: int, warmup: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps({"start": at, "ticks": ticks, "warmup": warmup}))
        self.process.stdin.write(b"\n")

    async def result(self, timeout: float) -> tuple[list[Write], Published, float]:
        answer = await self._receive(timeout)
        writes = [(str(s), int(v), float(at)) for s, v, at in answer["writes"]]
        published = {(str(s), int(seq)): float(at) for s, seq, at in answer["published"]}
        return writes, published, float(answer["cpu"])

    async def _receive(self, timeout: float) -> Any:
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if not line:
            self.stderr.seek(0)
            errors = self.stderr.read().decode(errors="replace")[-LOG_TAIL:]
            raise RuntimeError(f"the writer process stopped answering:\n{errors}")
        return orjson.loads(line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_GRACE)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.stderr.close()
