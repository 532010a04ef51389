"""Fan-out: one gateway process, thousands of WebSocket clients, 20 symbols.

    .venv/bin/python -m bench.fanout --clients 1000 2000 --modes stock asyncio eventlet
    .venv/bin/python -m bench.fanout --clients 1000 --symbols-per-client 4 \
        --modes asyncio node --payload delta --repeats 3     # side by side, as issue 20

For each mode and client count it starts a private redis-server and one gateway on
loopback: ``rtplot gateway`` (``asyncio`` or ``eventlet``); ``stock``, plain
python-socketio as its docs set it up (bench/stock_gateway.py); or ``node``, the
reference Socket.IO server, Node socket.io with @socket.io/redis-adapter
(bench/reference_gateway.mjs, pinned in package.json; ``make install`` installs it). It
opens the clients from this process (bench/loadgen.py) and subscribes each to one symbol
of 20, round-robin, or to ``--symbols-per-client`` of them (client i: symbols i, i + 5,
i + 10 and i + 15 for 4, so a page's charts tick across the whole second's publishing).
Then it publishes an update per symbol once a second as the renderer does, the Socket.IO
packet on the room's own Redis channel (for ``stock``, through python-socketio's Redis
queue, as its docs set it up; for ``node``, in @socket.io/redis-adapter's own format on
its channel, as a socket.io emitter does): a 390-point figure (``--payload figure``), or
the small delta the web page subscribes to (``--payload delta``). Every payload carries
its publish time as its first field, so each receipt gives a publish-to-client latency
without parsing the rest.

Reported per run: latency p50/p99; the spread of one update from its first to its last
client (p50/p99); delivered messages/s; the gateway's CPU (% of one core; for ``node``,
the Node process's) and RSS per connection (idle, before publishing); and this load
generator's CPU, so it can be seen not to be the bottleneck. With ``--repeats`` each
figure is the median over the runs, and the modes take turns: each round runs every
mode once, so they share whatever else the machine was doing. With ``--before PATH`` (a
checkout of an earlier revision: ``git worktree add /tmp/rtplot-before COMMIT``), each
round also runs rtplot's gateways from that tree, for a before and after in one run.
"""

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgpack
import orjson
import redis

from bench import profiles
from bench.loadgen import (
    Crowd,
    OnEvent,
    event_frame,
    received_prefix,
    self_cpu,
    socketio_url,
    use_uvloop,
)
from bench.render import sample_delta
from bench.stats import median, percentile
from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.packets import event_packet, figure_payload
from common.contract.rooms import Mode, Room
from common.contract.snapshots import Whole, WriteRender
from common.messages import BARS, FIGURE, SUBSCRIBE, OrjsonCodec
from fetcher.sources.synthetic import SyntheticSource
from gateway.requests import UPDATE_MODES
from renderer.views import default_figure
from renderer.window import Window, rows_of
from rtplot.processes import Service, Stack, cpu_times, free_port

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = [f"SYM{i:02d}" for i in range(20)]


MODES = ("stock", "asyncio", "eventlet", "node")
OURS = ("asyncio", "eventlet")  # rtplot's gateways: the modes --before runs from a checkout
REFERENCE = ROOT / "bench" / "reference_gateway.mjs"
# @socket.io/redis-adapter 8.x: a broadcast's channel, "<key>#<namespace>#<room>#".
ADAPTER_CHANNEL = "socket.io#/#{room}#"
ADAPTER_UID = "rtplotbench"  # the sending server's id: not one of the receivers' ids
PAYLOADS = ("figure", "delta")


@dataclass
class Result:
    mode: str
    payload: str
    clients: int
    connected: int
    symbols_each: int  # symbols each client watches
    tree: str  # "this", or "before": the gateway ran from --before's tree
    p50_ms: float
    p99_ms: float
    spread_p50_ms: float  # one update, from its first client to its last
    spread_p99_ms: float
    delivered_per_s: float
    gateway_cpu: float  # % of one core while publishing
    us_per_delivery: float  # the gateway's CPU time per update delivered, in µs
    kernel_share: float  # % of the gateway's CPU time spent in the kernel
    rss_kb_per_conn: float
    loadgen_cpu: float  # % of one core while publishing


@dataclass
class Receipts:
    """Every receipt's latency, and each update's first and last receipt."""

    latencies: list[float] = field(default_factory=list)
    spans: dict[bytes, list[float]] = field(default_factory=dict)  # sent -> [first, last]

    def handler(self, event: str) -> OnEvent:
        prefix = received_prefix(event) + b'{"sent":'  # every payload's first field
        start = len(prefix)

        def on_event(frame: bytes, received: float) -> None:
            if frame.startswith(prefix):
                sent = frame[start : frame.index(b",", start)]
                self.latencies.append(received - float(sent))
                span = self.spans.setdefault(sent, [received, received])
                span[1] = received

        return on_event

    def spreads(self) -> list[float]:
        return [last - first for first, last in self.spans.values()]


def watched(i: int, per_client: int) -> list[str]:
    """The symbols client ``i`` watches: spread over the 20, so each is watched alike."""
    step = len(SYMBOLS) // per_client
    return [SYMBOLS[(i + k * step) % len(SYMBOLS)] for k in range(per_client)]


def payload_for(kind: str, symbol: str) -> dict[str, Any]:
    """A payload of plain JSON types (numpy arrays made lists), for every mode alike."""
    plain = orjson.dumps(_payload(kind, symbol), option=orjson.OPT_SERIALIZE_NUMPY)
    return orjson.loads(plain)  # type: ignore[no-any-return]


def _payload(kind: str, symbol: str) -> dict[str, Any]:
    if kind == "delta":
        return {"sent": 0.0, **sample_delta(), "symbol": symbol}
    bars = (
        SyntheticSource()
        .fetch({symbol: int(time.time()) - 390 * 60 + 1}, time.time())
        .bars[symbol][-390:]
    )
    window = Window("bench", 0, rows_of([bar.as_list() for bar in bars]))
    return {"sent": 0.0, "symbol": symbol, "seq": 0, "figure": default_figure(symbol, window)}


Publish = Callable[[Room, dict[str, Any]], None]


def publisher(redis_url: str, mode: str, kind: str, stop: threading.Event, seconds: float) -> None:
    """An update per symbol once a second, each stamped with its publish time."""
    updates = Mode.DELTA if kind == "delta" else Mode.FIGURE
    payloads = {symbol: payload_for(kind, symbol) for symbol in SYMBOLS}
    client = redis.Redis.from_url(redis_url)
    if mode == "stock":
        publish = stock_emit(redis_url)
    else:
        publish = adapter_publish(client) if mode == "node" else room_publish(client)
    seq = 0
    deadline = time.monotonic() + seconds
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            seq += 1
            for symbol, payload in payloads.items():
                payload["seq"] = seq
                payload["sent"] = time.time()
                publish(Room(symbol, updates), payload)
            stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        client.close()


def room_publish(client: "redis.Redis") -> Publish:
    """As renderer/publish.py does: the Socket.IO packet, on the room's own channel."""
    keys = Keys()

    def publish(room: Room, payload: dict[str, Any]) -> None:
        data = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        client.publish(keys.channel(room), event_packet(room.event, data))

    return publish


def stock_emit(redis_url: str) -> Publish:
    """As python-socketio documents emitting from another process: its Redis queue."""
    import socketio

    manager = socketio.RedisManager(
        redis_url, channel=Keys().socketio_channel, write_only=True, json=OrjsonCodec
    )

    def publish(room: Room, payload: dict[str, Any]) -> None:
        manager.emit(room.event, payload, room=room.name, namespace="/")

    return publish


def adapter_publish(client: "redis.Redis") -> Publish:
    """As @socket.io/redis-adapter broadcasts to one room, and so as its emitter
    (@socket.io/redis-emitter) does: ``[uid, packet, options]`` in MessagePack, the
    adapter's default parser, on the room's channel."""

    def publish(room: Room, payload: dict[str, Any]) -> None:
        packet = {"type": 2, "data": [room.event, payload], "nsp": "/"}  # 2: EVENT
        options = {"rooms": [room.name], "except": [], "flags": {}}
        message = msgpack.packb([ADAPTER_UID, packet, options])
        client.publish(ADAPTER_CHANNEL.format(room=room.name), message)

    return publish


@dataclass
class Measured:
    connected: int
    rss_kb_per_conn: float
    gateway_cpu: float
    kernel_share: float
    loadgen_cpu: float
    receipts: Receipts


async def run_clients(
    gateway: Service,
    mode: str,
    count: int,
    kind: str,
    publish_seconds: float,
    redis_url: str,
    profile: Path | None = None,
    per_client: int = 1,
) -> Measured:
    receipts = Receipts()
    updates = {"updates": "delta"} if kind == "delta" else {}

    def subscribe(i: int) -> list[str]:
        return [
            event_frame(SUBSCRIBE, orjson.dumps({"symbol": symbol, **updates}).decode())
            for symbol in watched(i, per_client)
        ]

    event = BARS if kind == "delta" else FIGURE
    crowd = Crowd(socketio_url(gateway.port), count, subscribe, receipts.handler(event))
    base_rss = gateway.rss_kb()
    connected = await crowd.connect()
    await asyncio.sleep(2)
    idle_rss = gateway.rss_kb()

    publish_stop = threading.Event()
    thread = threading.Thread(
        target=publisher, args=(redis_url, mode, kind, publish_stop, publish_seconds), daemon=True
    )
    (user0, system0), self0, wall0 = cpu_times(gateway.pid), self_cpu(), time.monotonic()
    thread.start()
    sampler = profiles.record(gateway.pid, publish_seconds, profile) if profile else None
    await asyncio.sleep(publish_seconds + 1)
    if sampler is not None:
        await asyncio.to_thread(sampler.wait, 60)
    publish_stop.set()
    wall = time.monotonic() - wall0
    user, system = cpu_times(gateway.pid)
    gateway_cpu = (user - user0 + system - system0) / wall * 100
    kernel_share = (system - system0) / max(user - user0 + system - system0, 1e-9) * 100
    loadgen_cpu = (self_cpu() - self0) / wall * 100
    await crowd.close()
    return Measured(
        connected,
        (idle_rss - base_rss) / max(connected, 1),
        gateway_cpu,
        kernel_share,
        loadgen_cpu,
        receipts,
    )


def start_gateway(stack: Stack, mode: str) -> Service:
    if mode in ("asyncio", "eventlet"):
        return stack.start("gateway", "gateway", "--mode", mode)
    port = free_port()  # the peers take it as an argument
    if mode == "stock":
        command: tuple[str, ...] = (sys.executable, "-m", "bench.stock_gateway")
    else:
        if not (ROOT / "node_modules" / "@socket.io" / "redis-adapter").is_dir():
            raise SystemExit("the reference server's packages are missing: run `make install`")
        command = ("node", str(REFERENCE))
        return stack.start(
            "gateway", str(port), stack.redis.url, rooms_json(), command=command, port=port
        )
    return stack.start("gateway", str(port), stack.redis.url, command=command, port=port)


def rooms_json() -> str:
    """The reference server's rooms, named by the contract: a subscribe's ``updates``
    -> symbol -> room name."""
    rooms = {
        updates: {symbol: Room(symbol, mode).name for symbol in SYMBOLS}
        for updates, mode in UPDATE_MODES.items()
    }
    return orjson.dumps(rooms).decode()


def one_run(
    mode: str,
    count: int,
    publish_seconds: float,
    kind: str = "figure",
    profile: Path | None = None,
    per_client: int = 1,
    tree: Path | None = None,
) -> Result:
    """One gateway process under ``count`` clients, each watching ``per_client`` symbols;
    with ``profile``, py-spy samples the gateway while updates are published and writes
    collapsed stacks there (not for ``node``, which py-spy cannot read). With ``tree``,
    the gateway runs from that checkout."""
    if not 1 <= per_client <= len(SYMBOLS):
        raise ValueError(f"symbols per client: 1 to {len(SYMBOLS)}, not {per_client}")
    profile = None if mode == "node" else profile
    # Stock python-socketio takes minutes to drop 10,000 clients (it scans every room per
    # disconnect); the run is over, so do not wait for it.
    with Stack(
        grace=30,
        cwd=tree or ROOT,
        symbols=",".join(SYMBOLS[:4]),
        log_level="WARNING",
        max_queued=1000,
    ) as stack:
        gateway = start_gateway(stack, mode)
        use_uvloop()
        measured = asyncio.run(
            run_clients(
                gateway, mode, count, kind, publish_seconds, stack.redis.url, profile, per_client
            )
        )
    latencies = measured.receipts.latencies
    spreads = measured.receipts.spreads()
    return Result(
        mode=mode,
        payload=kind,
        clients=count,
        connected=measured.connected,
        symbols_each=per_client,
        tree="this" if tree is None else "before",
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        spread_p50_ms=percentile(spreads, 0.5) * 1000,
        spread_p99_ms=percentile(spreads, 0.99) * 1000,
        delivered_per_s=len(latencies) / publish_seconds,
        gateway_cpu=measured.gateway_cpu,
        us_per_delivery=measured.gateway_cpu * 1e4 / max(len(latencies) / publish_seconds, 1),
        kernel_share=measured.kernel_share,
        rss_kb_per_conn=measured.rss_kb_per_conn,
        loadgen_cpu=measured.loadgen_cpu,
    )


def measure(
    mode: str,
    count: int,
    publish_seconds: float,
    kind: str = "figure",
    repeats: int = 1,
    profile: Path | None = None,
    per_client: int = 1,
) -> Result:
    """The median of each figure over ``repeats`` runs (py-spy samples the first only)."""
    profiles_of = {mode: profile} if profile else {}
    return compare([mode], count, publish_seconds, kind, repeats, profiles_of, per_client)[0]


def compare(
    modes: list[str],
    count: int,
    publish_seconds: float,
    kind: str = "figure",
    repeats: int = 1,
    profiles_of: dict[str, Path] | None = None,
    per_client: int = 1,
    before: Path | None = None,
) -> list[Result]:
    """Each mode's medians over ``repeats`` rounds, a round running every mode once in
    turn, so that the modes compared share the machine's drift (py-spy samples each
    mode's first run, where ``profiles_of`` names a file for it). With ``before``, a
    round first runs each of rtplot's modes from that tree."""
    peers: list[tuple[str, Path | None]] = [(m, before) for m in modes if before and m in OURS]
    peers += [(mode, None) for mode in modes]
    runs: dict[tuple[str, Path | None], list[Result]] = {peer: [] for peer in peers}
    for i in range(repeats):
        for mode, tree in peers:
            profile = (profiles_of or {}).get(mode) if i == 0 and tree is None else None
            result = one_run(mode, count, publish_seconds, kind, profile, per_client, tree)
            runs[mode, tree].append(result)
    return [medians_of(runs[peer]) for peer in peers]


def medians_of(runs: list[Result]) -> Result:
    medians = {
        name: median(getattr(r, name) for r in runs)
        for name, value in vars(runs[0]).items()
        if isinstance(value, float)
    }
    return replace(runs[0], connected=min(r.connected for r in runs), **medians)


def table(results: list[Result]) -> str:
    lines = [
        "| mode | payload | clients | connected | p50 | p99 | spread p50 | spread p99 | "
        "delivered/s | gateway CPU | CPU per delivery | of it in the kernel | "
        "RSS per idle connection | load generator CPU |",
        "| --- | --- |" + " ---: |" * 12,
    ]
    for r in results:
        lines.append(
            f"| {name(r)} | {r.payload} | {clients(r)} | {r.connected:,} | {r.p50_ms:.0f} ms | "
            f"{r.p99_ms:.0f} ms | {r.spread_p50_ms:.0f} ms | {r.spread_p99_ms:.0f} ms | "
            f"{r.delivered_per_s:,.0f} | {r.gateway_cpu:.0f} % | {r.us_per_delivery:.1f} µs | "
            f"{r.kernel_share:.0f} % | {r.rss_kb_per_conn:.1f} KB | {r.loadgen_cpu:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def name(r: Result) -> str:
    return r.mode if r.tree == "this" else f"{r.mode} ({r.tree})"


def clients(r: Result) -> str:
    return f"{r.clients:,}" + (f" x {r.symbols_each}" if r.symbols_each > 1 else "")


def ratios(results: list[Result], mode: str = "asyncio", reference: str = "node") -> str:
    """``mode`` beside ``reference`` wherever both ran the same load: CPU per delivered
    update and its ratio, as issue 20's side-by-side reads."""
    lines = [
        f"| gateway | clients x symbols each | payload | CPU per delivery | {reference}: CPU "
        f"per delivery | gateway / {reference} | p99 | {reference}: p99 | delivered/s |",
        "| --- | --- | --- |" + " ---: |" * 6,
    ]
    for ours in (r for r in results if r.mode == mode):
        for theirs in results:
            if theirs.mode == reference and same_load(ours, theirs):
                lines.append(
                    f"| {name(ours)} | {ours.clients:,} x {ours.symbols_each} | {ours.payload} | "
                    f"{ours.us_per_delivery:.1f} µs | {theirs.us_per_delivery:.1f} µs | "
                    f"{ours.us_per_delivery / theirs.us_per_delivery:.2f}x | "
                    f"{ours.p99_ms:.0f} ms | {theirs.p99_ms:.0f} ms | "
                    f"{ours.delivered_per_s:,.0f} / {theirs.delivered_per_s:,.0f} |"
                )
    return "\n".join(lines) + "\n"


def same_load(a: Result, b: Result) -> bool:
    return (a.clients, a.symbols_each, a.payload) == (b.clients, b.symbols_each, b.payload)


# -- idle connections: how many one process holds, and how fast it lets them go ---------

FILE_LIMIT_HEADROOM = 100  # descriptors a process needs beside its clients
IDLE_TARGET = 20_000  # issue 12: idle clients on one process


def idle_capacity() -> int:
    """Issue 12's 20,000 idle clients, or as many as this machine's open-file limit lets
    one process hold (the gateway and the load generator each hold one descriptor per
    client)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return min(IDLE_TARGET, soft - FILE_LIMIT_HEADROOM)


@dataclass
class Idle:
    mode: str
    clients: int
    connected: int
    served: int  # clients that received their snapshot
    rss_kb_per_conn: float
    stop_seconds: float  # SIGTERM to exit, with every client connected


def idle_run(mode: str, count: int) -> Idle:
    """``count`` clients that subscribe, get their snapshot and then only stay connected;
    then the gateway is stopped as compose stops it (SIGTERM), and timed."""
    with Stack(grace=30, cwd=ROOT, symbols=",".join(SYMBOLS[:4]), log_level="WARNING") as stack:
        scripts = Scripts(stack.client, Keys())
        for symbol in SYMBOLS:  # a small snapshot for every symbol: "served" = received it
            payload = figure_payload(symbol, "", 1, "bench", b'{"data":[],"layout":{}}')
            whole = Whole(payload, {}, time.time())
            packet = event_packet(FIGURE, payload)
            scripts.run(WriteRender(symbol, "", "bench", 1, {}, packet, whole=whole))
        gateway = start_gateway(stack, mode)
        use_uvloop()
        connected, served, rss = asyncio.run(_hold_idle(gateway, count))
        started = time.monotonic()
        gateway.send_signal(15)
        gateway.process.wait(timeout=60)
        stop_seconds = time.monotonic() - started
    return Idle(mode, count, connected, served, rss, stop_seconds)


async def _hold_idle(gateway: Service, count: int) -> tuple[int, int, float]:
    served: set[int] = set()

    def on_event_for(i: int) -> OnEvent:
        return lambda frame, _at: served.add(i)

    def subscribe(i: int) -> list[str]:
        return [
            event_frame(SUBSCRIBE, orjson.dumps({"symbol": SYMBOLS[i % len(SYMBOLS)]}).decode())
        ]

    crowd = Crowd(socketio_url(gateway.port or 0), count, subscribe, lambda frame, at: None)
    for i, client in enumerate(crowd.clients):
        client.on_event = on_event_for(i)
    base = gateway.rss_kb()
    connected = await crowd.connect(timeout=300)
    await asyncio.sleep(3)
    rss = (gateway.rss_kb() - base) / max(connected, 1)
    crowd.stop.set()  # the clients close only after the gateway has stopped (below)
    return connected, len(served), rss


def idle_table(rows: list[Idle]) -> str:
    lines = [
        "| mode | clients | connected | served | RSS per idle connection | stop (SIGTERM) |",
        "| --- |" + " ---: |" * 5,
    ]
    for r in rows:
        lines.append(
            f"| {r.mode} | {r.clients:,} | {r.connected:,} | {r.served:,} | "
            f"{r.rss_kb_per_conn:.1f} KB | {r.stop_seconds:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--payload", choices=PAYLOADS, default="figure")
    parser.add_argument(
        "--symbols-per-client", type=int, default=[1], nargs="+", help="symbols each client watches"
    )
    parser.add_argument(
        "--before", type=Path, help="a checkout of an earlier revision: its gateways run too"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy collapsed stacks of each gateway run"
    )
    parser.add_argument(
        "--idle", action="store_true", help="idle clients only: connected, memory, stop time"
    )
    args = parser.parse_args()
    if args.idle:
        rows = [idle_run(mode, count) for count in args.clients for mode in args.modes]
        print(idle_table(rows))
        return
    results = []
    for count in args.clients:
        for each in args.symbols_per_client:
            outs = {
                mode: args.profile / f"fanout-{mode}-{count}x{each}.txt"
                for mode in args.modes
                if args.profile
            }
            rows = compare(
                args.modes, count, args.seconds, args.payload, args.repeats, outs, each, args.before
            )
            for out in outs.values():
                if out.exists():
                    print(f"{out}:\n{profiles.markdown(profiles.top(out))}")
            for result in rows:
                print(result, flush=True)
            results += rows
    print(table(results))
    if {"asyncio", "node"} <= set(args.modes):
        print(ratios(results))
    print(orjson.dumps([r.__dict__ for r in results]).decode())


if __name__ == "__main__":
    main()
