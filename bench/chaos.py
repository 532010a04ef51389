"""A chaos soak: the whole pipeline under load while its processes are killed and frozen.

    .venv/bin/python -m bench.chaos                  # 10 minutes, 200 clients, 20 symbols
    .venv/bin/python -m bench.chaos --minutes 2      # shorter
    .venv/bin/python -m bench.chaos --write docs/chaos.md   # the report docs/reliability.md links

Redis (with AOF, as compose runs it), a worker, a beat, a renderer and two gateways behind
HAProxy (deploy/haproxy.cfg) run on loopback. 200 python-socketio clients connect through
HAProxy, reconnecting and resubscribing by themselves as the page does, each watching one
of 20 symbols. Every 20-40 s one process, chosen at random, is killed (SIGKILL) and started
again a second later, as compose's restart policy would, or frozen (SIGSTOP) for 5-10 s:
the worker, the beat, the renderer, a gateway, or Redis itself.

Checked throughout: 15 s after each fault every client holds its symbol's newest figure
(the same epoch as the store's, and a seq at most a few ticks behind its newest render);
no client ever sees a seq go backwards within an epoch. After the run, the stored bars of
every symbol equal the synthetic market's for the window (finished minutes).
"""

import argparse
import asyncio
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import socketio

from common.contract.keys import Keys
from common.contract.snapshots import read_newest
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from rtplot.processes import Service, Stack, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = [f"CH{i:02d}" for i in range(20)]
WINDOW = 390
AOF = ("--appendonly", "yes", "--appendfsync", "everysec")
CONVERGE_WITHIN = 15.0  # seconds after a fault
BEHIND = 3  # renders a client may trail the store's newest by and still be "current"
TARGETS = ("worker", "beat", "renderer", "gateway-1", "gateway-2", "redis")


@dataclass
class Fault:
    at_s: float  # since the run started
    target: str
    action: str  # "killed" or "frozen"
    converged: int  # clients holding their symbol's newest figure 15 s later
    clients: int
    worst_lag: int  # renders behind, among clients in the store's epoch


@dataclass
class Report:
    minutes: float
    clients: int
    faults: list[Fault] = field(default_factory=list)
    backwards: int = 0  # seq decreases within an epoch, all clients
    epochs_seen: int = 0
    bars_checked: int = 0
    bars_wrong: int = 0


class Clients:
    """The crowd, in a thread with its own event loop: python-socketio clients that
    reconnect and resubscribe, each noting every figure's epoch and seq."""

    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.latest: dict[int, tuple[str, int]] = {}  # client -> (epoch, seq) last seen
        self.backwards = 0
        self.epochs: set[str] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clients = asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(120)

    async def _open(self) -> list[socketio.AsyncClient]:
        clients = [self._client(i) for i in range(self.count)]
        for i in range(0, len(clients), 25):
            await asyncio.gather(
                *(c.connect(self.url, transports=["websocket"]) for c in clients[i : i + 25])
            )
        return clients

    def _client(self, i: int) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection_delay=0.5, reconnection_delay_max=2)
        symbol = SYMBOLS[i % len(SYMBOLS)]

        async def on_connect() -> None:
            await client.emit("subscribe", {"symbol": symbol})

        def on_figure(payload: dict[str, Any]) -> None:
            epoch, seq = str(payload.get("epoch")), int(payload["seq"])
            self.epochs.add(epoch)
            before = self.latest.get(i)
            if before is not None and before[0] == epoch and seq < before[1]:
                self.backwards += 1
            if before is None or before[0] != epoch or seq > before[1]:
                self.latest[i] = (epoch, seq)

        client.on("connect", on_connect)
        client.on("figure", on_figure)
        return client

    def close(self) -> None:
        async def close_all() -> None:
            await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


@contextmanager
def balancer(ports: list[int]) -> Iterator[Service]:
    """HAProxy with the project's config, its servers the gateways on loopback."""
    config = (ROOT / "deploy/haproxy.cfg").read_text()
    servers = "\n".join(f"    server g{i} 127.0.0.1:{p} check" for i, p in enumerate(ports))
    config = re.sub(r"^\s*server-template .*$", servers, config, flags=re.M)
    port, stats = free_port(), free_port()
    config = config.replace("bind :8000", f"bind 127.0.0.1:{port}")
    config = config.replace("bind :8404", f"bind 127.0.0.1:{stats}")
    with tempfile.TemporaryDirectory(prefix="rtplot-chaos-") as folder:
        path = Path(folder) / "haproxy.cfg"
        path.write_text(config)
        lb = Service(
            "lb",
            ["-f", str(path)],
            clean_env(),
            log_dir=Path(folder),
            command=("haproxy",),
            port=port,
        )
        try:
            lb.wait_healthy(f"http://127.0.0.1:{stats}/healthz")
            yield lb
        finally:
            lb.stop()


def newest(stack: Stack) -> dict[str, tuple[str, int]]:
    """Each symbol's newest render in the store: (epoch, head)."""
    found = read_newest(stack.client, Keys(), SYMBOLS)
    return {symbol: (newest.epoch, newest.head) for symbol, newest in found.items()}


def converged(stack: Stack, clients: Clients) -> tuple[int, int]:
    store = newest(stack)
    ok, worst = 0, 0
    for i in range(clients.count):
        epoch, head = store[SYMBOLS[i % len(SYMBOLS)]]
        seen = clients.latest.get(i)
        if seen is not None and seen[0] == epoch:
            lag = max(head - seen[1], 0)
            worst = max(worst, lag)
            ok += lag <= BEHIND
    return ok, worst


def inflict(stack: Stack, target: str, action: str) -> None:
    """Kill (and start again a second later) or freeze (for 5-10 s) one process."""
    if target == "redis":
        process = stack.redis.process
        assert process is not None
        if action == "killed":
            process.kill()
            process.wait()
            time.sleep(1)
            stack.redis.start()
        else:
            process.send_signal(signal.SIGSTOP)
            time.sleep(random.uniform(5, 10))
            process.send_signal(signal.SIGCONT)
        return
    service = stack.services[target]
    if action == "killed":
        service.kill()
        time.sleep(1)
        stack.restart(target)
    else:
        service.send_signal(signal.SIGSTOP)
        time.sleep(random.uniform(5, 10))
        service.send_signal(signal.SIGCONT)


def stored_bars_match(stack: Stack) -> tuple[int, int]:
    """(bars compared, bars that differ from the source) over the finished minutes."""
    now = time.time()
    store = BarStore(stack.client, Keys(), WINDOW)
    source = SyntheticSource().fetch({s: store.window_start(now) for s in SYMBOLS}, now)
    checked = wrong = 0
    for symbol in SYMBOLS:
        stored = {bar.t: bar for bar in store.bars(symbol)}
        for bar in source.bars[symbol][:-2]:  # the minutes that cannot change any more
            checked += 1
            wrong += stored.get(bar.t) != bar
    return checked, wrong


def run(minutes: float, count: int, seed: int) -> Report:
    random.seed(seed)
    report = Report(minutes, count)
    settings: dict[str, Any] = {
        "symbols": ",".join(SYMBOLS),
        "window_minutes": WINDOW,
        "fetch_interval": 1,
        "log_level": "WARNING",
    }
    with Stack(*AOF, cwd=ROOT, **settings) as stack:
        for name in ("worker", "beat", "renderer"):
            stack.launch(name)
        for name in ("gateway-1", "gateway-2"):
            stack.launch(name, "gateway")
        stack.wait_healthy()
        stack.wait_snapshots(SYMBOLS, timeout=120)
        ports = [stack.services[g].port or 0 for g in ("gateway-1", "gateway-2")]
        with balancer(ports) as lb:
            clients = Clients(lb.url, count)
            started = time.monotonic()
            try:
                while time.monotonic() - started < minutes * 60 - CONVERGE_WITHIN:
                    time.sleep(random.uniform(20, 40) - CONVERGE_WITHIN)
                    target = random.choice(TARGETS)
                    action = random.choice(("killed", "frozen"))
                    at = time.monotonic() - started
                    inflict(stack, target, action)
                    time.sleep(CONVERGE_WITHIN)
                    ok, worst = converged(stack, clients)
                    fault = Fault(round(at, 1), target, action, ok, count, worst)
                    report.faults.append(fault)
                    print(fault, flush=True)
            finally:
                clients.close()
            report.backwards = clients.backwards
            report.epochs_seen = len(clients.epochs)
        time.sleep(3)  # a tick or two: the last backfill
        report.bars_checked, report.bars_wrong = stored_bars_match(stack)
    return report


def markdown(report: Report) -> str:
    lines = [
        "## Chaos soak",
        "",
        f"`python -m bench.chaos --minutes {report.minutes:g}`: the whole pipeline on "
        f"loopback (Redis with AOF, worker, beat, renderer, two gateways behind HAProxy), "
        f"{report.clients} python-socketio clients on {len(SYMBOLS)} symbols through "
        "HAProxy, reconnecting by themselves. Every 20-40 s a random process killed "
        "(and started again a second later) or frozen for 5-10 s. *Current 15 s later*: "
        f"clients holding their symbol's newest figure (same epoch, at most {BEHIND} "
        "renders behind).",
        "",
        "| at | process | fault | current 15 s later | most renders behind |",
        "| ---: | --- | --- | ---: | ---: |",
    ]
    for f in report.faults:
        lines.append(
            f"| {f.at_s:.0f} s | {f.target} | {f.action} | {f.converged}/{f.clients} | "
            f"{f.worst_lag} |"
        )
    lines += [
        "",
        f"Seq backwards within an epoch, all clients, the whole run: **{report.backwards}**. "
        f"Epochs seen: {report.epochs_seen} (each Redis restart starts new ones). "
        f"Stored bars against the source after the run: {report.bars_wrong} of "
        f"{report.bars_checked:,} differ.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    report = run(args.minutes, args.clients, args.seed)
    text = markdown(report)
    print(text)
    if args.write:
        args.write.write_text("# Chaos soak\n\n" + text.removeprefix("## Chaos soak\n\n"))
    print(orjson.dumps(asdict(report)).decode(), file=sys.stderr)


if __name__ == "__main__":
    main()
