"""Scaling with viewers: rtplot's whole pipeline against the article's per-client loop.

    .venv/bin/python -m bench.viewers [--viewers 10 100 1000] [--seconds 10] [--repeats 3]
    .venv/bin/python -m bench.viewers --quick     # 4 s windows, one repeat (about 50 s)

Both sides serve the same viewers (lean Socket.IO clients from ``bench.loadgen``, spread
round-robin over 5 symbols) one chart update per viewer per 1 s tick, on loopback:

- rtplot: a private redis-server and the real ``rtplot worker``, ``beat``, ``renderer`` and
  ``gateway`` (asyncio) as processes; each viewer subscribes as the page does,
  ``{"symbol": S, "updates": "delta"}``.
- the article: one eventlet python-socketio process (as its ``gunicorn -k eventlet -w 1``)
  where every ``ping_graph`` starts that client's own loop: "download" a day of 1-minute
  bars (stubbed with the synthetic source, as the pandas frame yfinance returns), render
  it with the article's plot.py (``bench.render.article_render``), emit ``graph_plot`` to
  that client, sleep one tick. The article slept 61 s; here both sides tick every 1 s.

Viewers connect first, then all ask for their chart at once. The window starts 1 s
later, on rtplot's side once every viewer also has the snapshot its subscribe sends (a
one-off, not the per-tick cost); over it, the CPU time of every process of each side
(children included) and of this load generator is read, with the updates each viewer
received. Each point is the
median over ``--repeats`` runs; each ratio is article / rtplot from the same repeat.
"""

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.loadgen import (
    Crowd,
    LeanClient,
    OnEvent,
    event_frame,
    received_prefix,
    self_cpu,
    socketio_url,
)
from bench.stats import median
from common.messages import BARS, FIGURE, GRAPH_PLOT, PING_GRAPH, SUBSCRIBE
from rtplot.processes import Service, Stack, clean_env, cpu_seconds, free_port, terminate

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ["AAPL", "MSFT", "TSLA", "BRK-B", "NVDA"]
TICK = 1.0  # seconds between updates, both sides (the article's was 61 s)
DAY_BARS = 390  # one trading day of 1-minute bars: what the article downloaded
WARM_UP = 1.0  # seconds after the viewers ask (and rtplot's snapshots are out)
SETTLE_TIMEOUT = 30.0  # longest wait for every viewer's snapshot
ARTICLE_LIFETIME = 900.0  # the article server exits by itself after this, whatever happens
SERVICES = ("worker", "beat", "renderer", "gateway")
RTPLOT_SNAPSHOT = received_prefix(FIGURE)
RTPLOT_UPDATES = (received_prefix(BARS), RTPLOT_SNAPSHOT)
ARTICLE_UPDATES = (f'42["{GRAPH_PLOT}",'.encode(),)  # python-socketio's, the article's server


@dataclass
class Side:
    """One side, one viewer count, one repeat."""

    connected: int
    cpu: float  # % of one core, every process of the side
    gateway_cpu: float  # % of one core, the process that talks to the viewers
    updates_per_s: float  # updates received by all viewers
    served: int  # viewers that received at least one update in the window
    loadgen_cpu: float  # % of one core, this process

    @property
    def ms_per_update(self) -> float:
        return self.cpu * 10 / self.updates_per_s if self.updates_per_s else math.nan


@dataclass
class ResultRow:
    """Medians over the repeats of one viewer count; plain numbers, for plotting."""

    viewers: int
    symbols: int
    seconds: float
    repeats: int
    rtplot_cpu: float  # % of one core: redis-server, worker, beat, renderer, gateway
    rtplot_gateway_cpu: float
    article_cpu: float  # % of one core: the article's one server process
    cpu_ratio: float  # article / rtplot, same repeat
    rtplot_updates_per_s: float
    article_updates_per_s: float
    rtplot_served: float  # viewers with at least one update in the window
    article_served: float
    rtplot_ms_per_update: float  # CPU ms per delivered update
    article_ms_per_update: float
    per_update_ratio: float  # article / rtplot, same repeat
    # % of one core the article would need to give every viewer one update per tick, at its
    # CPU per update with the fewest viewers (extrapolated)
    article_cpu_needed: float
    needed_ratio: float  # article_cpu_needed / rtplot_cpu
    loadgen_cpu_rtplot: float
    loadgen_cpu_article: float


# -- processes ------------------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its live descendants (a worker may fork)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            total += cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between readings
    return total


def pipeline() -> Stack:
    """rtplot as it is deployed, on a private redis-server and loopback ports."""
    return Stack(
        symbols=",".join(SYMBOLS),
        source="synthetic",
        fetch_interval=TICK,
        window_minutes=DAY_BARS,  # the same chart as the article's
        log_level="WARNING",
    )


def pids(stack: Stack) -> dict[str, int]:
    """Every process of the pipeline, redis-server included."""
    return {"redis-server": stack.redis.pid} | {s: stack.services[s].pid for s in SERVICES}


def launch_article(logs: Path) -> Service:
    """``python -m bench.viewers --serve-article PORT`` as a child process."""
    port = free_port()
    args = ["--serve-article", str(port)]
    command = (sys.executable, "-m", "bench.viewers")
    return Service("article", args, clean_env(), log_dir=logs, command=command, cwd=ROOT, port=port)


def wait_article(server: Service) -> None:
    # A polling handshake is the first URL this server answers with 200.
    server.wait_healthy(f"{server.url}/socket.io/?EIO=4&transport=polling")


# -- the article's server ------------------------------------------------------------------


def serve_article(port: int, tick: float = TICK) -> None:
    """The article's main.py + plot.py, with yfinance stubbed by the synthetic source."""
    import eventlet

    eventlet.monkey_patch()  # what gunicorn -k eventlet does before loading the app
    import eventlet.wsgi
    import socketio

    from bench.render import article_frame, article_render
    from fetcher.sources.synthetic import SyntheticSource

    source = SyntheticSource()

    def get_plot(symbol: str) -> str:
        # yf.download(symbol, period="1d", interval="1m"): a day of 1-minute bars.
        now = time.time()
        since = int(now) - DAY_BARS * 60 + 1
        bars = source.fetch({symbol: since}, now).bars[symbol][-DAY_BARS:]
        return article_render(article_frame(bars), symbol)

    sio = socketio.Server(async_mode="eventlet", cors_allowed_origins="*")
    app = socketio.WSGIApp(sio)
    connected: list[str] = []  # the article keeps the sids of connected clients in a list
    deadline = time.monotonic() + ARTICLE_LIFETIME

    def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        connected.append(sid)

    def on_disconnect(sid: str, reason: Any = None) -> None:
        if sid in connected:
            connected.remove(sid)

    def on_ping_graph(sid: str, data: dict[str, str]) -> None:
        # One loop per client, as long as it stays connected (and this server lives).
        while sid in connected and time.monotonic() < deadline:
            sio.emit(GRAPH_PLOT, get_plot(data["symbol"]), to=sid)
            sio.sleep(tick)

    sio.on("connect", on_connect)
    sio.on("disconnect", on_disconnect)
    sio.on(PING_GRAPH, on_ping_graph)

    parent = os.getppid()

    def watchdog() -> None:
        # Never outlive the benchmark, even if it is killed before its `finally` runs.
        while os.getppid() == parent and time.monotonic() < deadline:
            eventlet.sleep(1)
        os._exit(0)

    eventlet.spawn(watchdog)
    # eventlet's defaults (a backlog of 50, 1,024 connections) would refuse viewers before
    # the loop is the limit; gunicorn's eventlet worker allowed 1,000 by default.
    listener = eventlet.listen(("127.0.0.1", port), backlog=2048)
    eventlet.wsgi.server(listener, app, log_output=False, max_size=10_000)


# -- viewers -------------------------------------------------------------------------------


class Tally:
    """Per viewer: updates received, and whether its first ``settle`` frame came."""

    def __init__(self, count: int, prefixes: tuple[bytes, ...], settle: bytes | None) -> None:
        self.updates = [0] * count
        self.settled = [settle is None] * count
        self.prefixes = prefixes
        self.settle = settle

    def on_event(self, i: int) -> OnEvent:
        def on_event(frame: bytes, _received: float) -> None:
            if frame.startswith(self.prefixes):
                self.updates[i] += 1
            if self.settle is not None and frame.startswith(self.settle):
                self.settled[i] = True

        return on_event


async def watch(
    url: str,
    count: int,
    frames_for: Callable[[int], Sequence[str]],
    tally: Tally,
    pids: dict[str, int],
    gateway: str,
    seconds: float,
) -> Side:
    """Connects ``count`` viewers, lets them ask, then reads CPU and updates over the window."""
    go = asyncio.Event()
    crowd = Crowd(url, 0, frames_for, lambda _frame, _at: None)
    crowd.clients = [LeanClient(tally.on_event(i), go) for i in range(count)]
    try:
        connected = await crowd.connect(timeout=60)
        go.set()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not all(tally.settled) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(WARM_UP)
        before = list(tally.updates)
        cpu0 = {name: tree_cpu(pid) for name, pid in pids.items()}
        self0, wall0 = self_cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - wall0
        cpu = {name: (tree_cpu(pid) - cpu0[name]) / wall * 100 for name, pid in pids.items()}
        loadgen = (self_cpu() - self0) / wall * 100
        after = list(tally.updates)
    finally:
        go.set()  # a client still waiting to ask must not hang the close
        await crowd.close()
    return Side(
        connected=connected,
        cpu=sum(cpu.values()),
        gateway_cpu=cpu[gateway],
        updates_per_s=(sum(after) - sum(before)) / wall,
        served=sum(a > b for a, b in zip(after, before, strict=True)),
        loadgen_cpu=loadgen,
    )


def subscribe_frames(i: int) -> list[str]:
    payload = {"symbol": SYMBOLS[i % len(SYMBOLS)], "updates": "delta"}  # what the page sends
    return [event_frame(SUBSCRIBE, orjson.dumps(payload).decode())]


def ping_graph_frames(i: int) -> list[str]:
    payload = {"symbol": SYMBOLS[i % len(SYMBOLS)]}  # what the article's React client sends
    return [event_frame(PING_GRAPH, orjson.dumps(payload).decode())]


def measure_repeat(counts: list[int], seconds: float) -> dict[int, tuple[Side, Side]]:
    """Every viewer count on rtplot, then on the article's server; never both at once,
    as they would share this machine's cores. One pipeline serves every count (its
    start-up is not what is measured); each count gets a fresh article server (a
    saturated one takes long to wind down), all started with the pipeline and idle
    until their turn, so their start-up costs no time of its own."""
    with tempfile.TemporaryDirectory(prefix="rtplot-bench-viewers-") as logs:
        servers = {count: launch_article(Path(logs)) for count in counts}
        try:
            return _measure(servers, seconds)
        finally:
            terminate(server.process for server in servers.values())


def _measure(servers: dict[int, Service], seconds: float) -> dict[int, tuple[Side, Side]]:
    ours = {}
    with pipeline() as stack:
        for service in SERVICES:
            stack.launch(service)
        stack.wait_healthy()
        stack.wait_snapshots(SYMBOLS)
        for server in servers.values():
            wait_article(server)
        url = socketio_url(stack.services["gateway"].port)
        for count in servers:
            # The snapshot each subscribe sends is a one-off: the window starts once
            # every viewer has had its own.
            tally = Tally(count, RTPLOT_UPDATES, settle=RTPLOT_SNAPSHOT)
            ours[count] = asyncio.run(
                watch(url, count, subscribe_frames, tally, pids(stack), "gateway", seconds)
            )
            stack.check_alive()
            log(f"rtplot  {count:>5} viewers: {ours[count]}")
    pairs = {}
    for count, server in servers.items():
        url = socketio_url(server.port)
        # Its first round of renders is no different from the next: no settling.
        tally = Tally(count, ARTICLE_UPDATES, settle=None)
        theirs = asyncio.run(
            watch(url, count, ping_graph_frames, tally, {"article": server.pid}, "article", seconds)
        )
        server.check_alive()
        server.stop()
        log(f"article {count:>5} viewers: {theirs}")
        pairs[count] = (ours[count], theirs)
    return pairs


# -- results -------------------------------------------------------------------------------


def summarise(
    viewers: int, seconds: float, pairs: list[tuple[Side, Side]], article_base_ms: float
) -> ResultRow:
    ours = [rtplot for rtplot, _ in pairs]
    theirs = [article for _, article in pairs]
    needed = article_base_ms / 1000 * viewers / TICK * 100
    return ResultRow(
        viewers=viewers,
        symbols=len(SYMBOLS),
        seconds=seconds,
        repeats=len(pairs),
        rtplot_cpu=median([r.cpu for r in ours]),
        rtplot_gateway_cpu=median([r.gateway_cpu for r in ours]),
        article_cpu=median([a.cpu for a in theirs]),
        cpu_ratio=median([a.cpu / r.cpu for r, a in pairs]),
        rtplot_updates_per_s=median([r.updates_per_s for r in ours]),
        article_updates_per_s=median([a.updates_per_s for a in theirs]),
        rtplot_served=median([r.served for r in ours]),
        article_served=median([a.served for a in theirs]),
        rtplot_ms_per_update=median([r.ms_per_update for r in ours]),
        article_ms_per_update=median([a.ms_per_update for a in theirs]),
        per_update_ratio=median([a.ms_per_update / r.ms_per_update for r, a in pairs]),
        article_cpu_needed=needed,
        needed_ratio=median([needed / r.cpu for r in ours]),
        loadgen_cpu_rtplot=median([r.loadgen_cpu for r in ours]),
        loadgen_cpu_article=median([a.loadgen_cpu for a in theirs]),
    )


def run(viewers: list[int], seconds: float, repeats: int) -> list[ResultRow]:
    pairs: dict[int, list[tuple[Side, Side]]] = {count: [] for count in viewers}
    for _ in range(repeats):
        for count, pair in measure_repeat(viewers, seconds).items():
            pairs[count].append(pair)
    # What the article needs per update where it still keeps up (the fewest viewers, if
    # it served them all): a saturated server's own figure counts renders whose sends
    # were still queued, so it would overstate the need.
    fewest = min(viewers)
    kept_up = all(article.served == fewest for _, article in pairs[fewest])
    base = median([a.ms_per_update for _, a in pairs[fewest]]) if kept_up else math.nan
    return [summarise(count, seconds, pairs[count], base) for count in viewers]


def number(value: float, digits: int = 0, unit: str = "") -> str:
    return f"{value:,.{digits}f}{unit}" if math.isfinite(value) else "—"


def markdown(results: list[ResultRow]) -> str:
    seconds = results[0].seconds if results else 0.0
    repeats = results[0].repeats if results else 0
    fewest = min((r.viewers for r in results), default=0)
    command = (
        f"python -m bench.viewers --viewers {' '.join(str(r.viewers) for r in results)} "
        f"--seconds {seconds:g} --repeats {repeats}"
    )
    lines = [
        "## Scaling with viewers",
        "",
        f"Total CPU of each side while N viewers of {len(SYMBOLS)} symbols ask for one "
        f"chart update per {TICK:g} s tick, read over {seconds:g} s windows; each figure "
        f"is the median of {repeats} run(s), each ratio article / rtplot from the same run. "
        "**rtplot**: redis-server, worker, beat, renderer and one asyncio gateway, as "
        "processes; viewers subscribe in delta mode, as the page does. **The article**: its "
        "server, one eventlet python-socketio process (it ran `gunicorn -k eventlet -w 1`), "
        "where each viewer's `ping_graph` starts that viewer's own loop: download a day of "
        "1-minute bars (stubbed with the synthetic source), render them with its plot.py, "
        "emit `graph_plot`, sleep. The article slept 61 s per loop; both sides tick every "
        f"1 s here. Both chart the same day of {DAY_BARS} bars. Viewers connect, then all "
        "ask at once; the window starts 1 s later (for rtplot, 1 s after every viewer has "
        "the snapshot its subscribe sends, a one-off).",
        "",
        "| viewers | rtplot CPU (its gateway) | article CPU | article / rtplot "
        "| updates/s rtplot / article | viewers served rtplot / article "
        "| CPU per update rtplot / article | article CPU needed (/ rtplot) | load generator CPU |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.viewers:,} | {number(r.rtplot_cpu, 0, ' %')} "
            f"({number(r.rtplot_gateway_cpu, 0, ' %')}) | {number(r.article_cpu, 0, ' %')} "
            f"| {number(r.cpu_ratio, 1, 'x')} "
            f"| {number(r.rtplot_updates_per_s)} / {number(r.article_updates_per_s)} "
            f"| {number(r.rtplot_served)} / {number(r.article_served)} "
            f"| {number(r.rtplot_ms_per_update, 2)} / {number(r.article_ms_per_update, 1)} ms "
            f"| {number(r.article_cpu_needed, 0, ' %')} ({number(r.needed_ratio, 0, 'x')}) "
            f"| {number(r.loadgen_cpu_rtplot, 0, ' %')} / "
            f"{number(r.loadgen_cpu_article, 0, ' %')} |"
        )
    lines += [
        "",
        "CPU is % of one core. *Viewers served*: viewers that received at least one update "
        "in the window. The article's server is one process, so it cannot use more than "
        "one core: once it nears 100 %, its viewers get far fewer updates than one per tick "
        "(some none at all), and its CPU stops growing only because it has none left. "
        "*Article CPU needed* is what it would take to keep up: its CPU per update at "
        f"{fewest:,} viewers, where it keeps up, times one update per viewer per tick "
        "(extrapolated, not measured). rtplot fetches and renders once per symbol; only its "
        "gateway's relaying grows with viewers. *Load generator CPU* is this process, on "
        "the same machine, during the rtplot / the article window.",
        "",
        f"Reproduce: `.venv/bin/{command}`.",
    ]
    return "\n".join(lines) + "\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seconds", type=float, help="measuring window (default 10, quick 4)")
    parser.add_argument("--repeats", type=int, help="runs per point (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve-article", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_article:
        serve_article(args.serve_article)
        return
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    repeats = args.repeats or (1 if args.quick else 3)
    started = time.monotonic()
    results = run(args.viewers, seconds, repeats)
    log(f"took {time.monotonic() - started:.0f} s")
    print(markdown(results))
    print(orjson.dumps([asdict(r) for r in results]).decode())


if __name__ == "__main__":
    main()
