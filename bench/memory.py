"""Where an idle connection's memory goes in the asyncio gateway, by library.

    .venv/bin/python -m bench.memory [--clients 2000]

Starts ``rtplot gateway`` with tracemalloc on (one frame per allocation, to keep its
overhead bearable), opens the clients, has the gateway dump an allocation snapshot
before and after (SIGUSR1), and sums the difference by the library that allocated it.
tracemalloc sees Python's allocations only: the rest of the RSS per connection in the
fan-out table is the allocator's overhead and C state (uvloop, the kernel's buffers are
not RSS).
"""

import argparse
import asyncio
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import Crowd, event_frame, socketio_url
from rtplot.processes import Service, Stack

ROOT = Path(__file__).resolve().parent.parent

LIBRARIES = {  # a path fragment -> the library it belongs to
    "/engineio/": "python-engineio",
    "/socketio/": "python-socketio",
    "/uvicorn/": "uvicorn",
    "/websockets/": "websockets (uvicorn's protocol)",
    "/asyncio/": "asyncio (queues, tasks, events)",
    "/prometheus_client/": "prometheus-client",
    "/gateway/": "rtplot's gateway",
}


@dataclass
class Share:
    library: str
    bytes_per_connection: float
    blocks_per_connection: float


def library_of(filename: str) -> str:
    for fragment, library in LIBRARIES.items():
        if fragment in filename:
            return library
    return "other"


def serve_gateway(snapshot_path: str) -> None:
    """The gateway, tracing allocations; SIGUSR1 writes a snapshot to the given path."""
    tracemalloc.start(1)

    def dump(_signum: int, _frame: object) -> None:
        tracemalloc.take_snapshot().dump(snapshot_path)

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["rtplot", "gateway"]
    from rtplot.cli import main

    main()


def measure(clients: int) -> tuple[list[Share], float]:
    """The shares by library and the total traced KB per connection."""
    command = (sys.executable, "-m", "bench.memory")
    # A gateway tracing every allocation can take a minute to stop: give it one.
    with (
        tempfile.TemporaryDirectory(prefix="rtplot-memory-") as folder,
        Stack(grace=60, cwd=ROOT, log_level="WARNING") as stack,
    ):
        out = Path(folder) / "snapshot"
        gateway = stack.start("gateway", "--serve-gateway", str(out), command=command)
        before = _snapshot(gateway, out)
        after = asyncio.run(_connected_snapshot(clients, gateway, out))
    size: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        library = library_of(stat.traceback[0].filename)
        size[library] += stat.size_diff
        count[library] += stat.count_diff
    shares = [Share(lib, n / clients, count[lib] / clients) for lib, n in size.most_common()]
    return shares, sum(size.values()) / clients / 1024


def _snapshot(gateway: Service, out: Path) -> tracemalloc.Snapshot:
    out.unlink(missing_ok=True)
    gateway.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            return tracemalloc.Snapshot.load(str(out))
        except (FileNotFoundError, EOFError):
            continue  # not written yet, or half written
    raise SystemExit("the gateway wrote no allocation snapshot")


async def _connected_snapshot(clients: int, gateway: Service, out: Path) -> tracemalloc.Snapshot:
    def subscribe(i: int) -> list[str]:
        return [event_frame("subscribe", f'{{"symbol":"SYM{i % 20:02d}"}}')]

    crowd = Crowd(socketio_url(gateway.port), clients, subscribe, lambda frame, at: None)
    connected = await crowd.connect()
    if connected < clients:
        raise SystemExit(f"only {connected} of {clients} clients connected")
    await asyncio.sleep(2)
    snapshot = await asyncio.to_thread(_snapshot, gateway, out)
    await crowd.close()
    return snapshot


def markdown(shares: list[Share], total_kb: float, clients: int) -> str:
    lines = [
        "### Where an idle connection's memory goes (asyncio gateway)",
        "",
        f"tracemalloc in the gateway, {clients:,} idle clients, allocations still held "
        f"after they connected, by the library that made them: {total_kb:.1f} KB per "
        "connection in all. Reproduce: `.venv/bin/python -m bench.memory`.",
        "",
        "| library | per connection | blocks |",
        "| --- | ---: | ---: |",
    ]
    for share in shares:
        lines.append(
            f"| {share.library} | {share.bytes_per_connection / 1024:.1f} KB | "
            f"{share.blocks_per_connection:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--serve-gateway", metavar="SNAPSHOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        serve_gateway(args.serve_gateway)
        return
    shares, total = measure(args.clients)
    print(markdown(shares, total, args.clients))


if __name__ == "__main__":
    main()
