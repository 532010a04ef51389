"""Run every benchmark and write docs/benchmarks.md, with plots and profiles.

    .venv/bin/python -m bench.run           # the full suite (about an hour)
    .venv/bin/python -m bench.run --quick   # the same tables, smaller and once (< 5 min)
    .venv/bin/python -m bench.run --before /tmp/rtplot-before   # adds the renderer's
                                            # "before" rows, from a checkout of an older commit

Every figure comes from this one run on this machine; each ratio is measured in the
same run. The section "Changes, before and after" is a hand-kept log: it is carried over
from the existing document unchanged.
"""

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import e2e, fanout, memory, page, plots, profiles, render, scaleout, viewers, views

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHANGES = "## Changes, before and after"
SIDE_BY_SIDE = 1000  # clients, as issue 20 measured rtplot against Node socket.io
REFERENCE_SHARE = 0.6  # issue 20: at most this share of Node's CPU per delivery, 4 symbols


@dataclass
class Plan:
    render_repeat: int
    fanout_counts: list[int]
    delta_counts: list[int]  # clients: deltas, every mode (issue 12's CPU per delivery)
    idle: bool  # as many idle clients as one process may hold (issue 12: 20,000)
    fanout_seconds: float
    side_by_side: list[int]  # symbols per client: 1,000 clients, asyncio beside Node
    repeats: int
    memory_clients: int
    viewer_counts: list[int]
    viewer_seconds: float
    e2e_clients: list[int]
    e2e_seconds: float


QUICK = Plan(
    render_repeat=50,
    fanout_counts=[1000],
    delta_counts=[1000],
    idle=False,
    fanout_seconds=4.0,
    side_by_side=[4],
    repeats=1,
    memory_clients=1000,
    viewer_counts=[10, 100, 1000],
    viewer_seconds=3.0,
    e2e_clients=[1000],
    e2e_seconds=4.0,
)
FULL = Plan(
    render_repeat=200,
    fanout_counts=[1000, 2000, 5000, 10_000],
    delta_counts=[2000, 10_000],
    idle=True,
    fanout_seconds=10.0,
    side_by_side=[1, 4],
    repeats=3,
    memory_clients=2000,
    viewer_counts=[10, 100, 1000],
    viewer_seconds=10.0,
    e2e_clients=[1000, 5000],
    e2e_seconds=10.0,
)


def say(message: str) -> None:
    print(f"[bench.run] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", type=Path, default=DOCS / "benchmarks.md")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier revision")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    images = args.write.parent / "images"
    profile_dir = args.write.parent / "profiles"
    started = time.monotonic()

    say("render cost and bytes per update")
    renders = render.render_rows(plan.render_repeat)
    rounds = render.round_rows(plan.render_repeat)
    sizes = render.bytes_rows()

    say("fan-out")
    biggest = plan.fanout_counts[-1]
    results = []
    for count in plan.fanout_counts:
        for mode in fanout.MODES:
            profile = profile_dir / f"fanout-{mode}.txt" if count == biggest else None
            if profile is not None and not profiles.available():
                profile = None
            say(f"fan-out {mode} {count:,} clients")
            results.append(
                fanout.measure(mode, count, plan.fanout_seconds, "figure", plan.repeats, profile)
            )
    for count in plan.delta_counts:
        for mode in fanout.MODES:
            say(f"fan-out {mode} {count:,} clients, deltas")
            results.append(fanout.measure(mode, count, plan.fanout_seconds, "delta", plan.repeats))
    beside = []
    for each in plan.side_by_side:
        say(f"fan-out beside the reference server, {SIDE_BY_SIDE:,} clients x {each} symbols")
        beside += fanout.compare(
            ["asyncio", "node"],
            SIDE_BY_SIDE,
            plan.fanout_seconds,
            "delta",
            plan.repeats,
            None,
            each,
        )
    idle = []
    if plan.idle:
        capacity = fanout.idle_capacity()
        for mode in ("asyncio", "eventlet"):
            say(f"{capacity:,} idle clients, {mode}")
            idle.append(fanout.idle_run(mode, capacity))

    say("scale-out: renderer throughput, 500 symbols, gateways, Redis traffic")
    scaled = scaleout.run(args.quick, args.before, profile_dir)

    say("what one view costs")
    view_costs = views.measure(plan.render_repeat // 2)

    say("memory per connection")
    shares, traced_kb = memory.measure(plan.memory_clients)

    say("scaling with viewers")
    viewer_rows = viewers.run(plan.viewer_counts, plan.viewer_seconds, plan.repeats)
    say("end to end")
    renderer_profile = profile_dir / "e2e-renderer.txt" if profiles.available() else None
    e2e_rows = e2e.run(plan.e2e_clients, plan.e2e_seconds, plan.repeats, profile=renderer_profile)

    say("the page in a browser")
    page_seconds = 8.0 if args.quick else 20.0
    page_results = page.run(page.plan(args.quick), page_seconds)

    say("plots")
    pictures = {
        "render": plots.render_cost(renders, images),
        "fanout": plots.fanout_latency(results, images),
        "memory": plots.fanout_memory(results, images),
        "viewers": plots.lines(
            [r.viewers for r in viewer_rows],
            {
                "article, CPU needed (extrapolated)": [r.article_cpu_needed for r in viewer_rows],
                "article, CPU used": [r.article_cpu for r in viewer_rows],
                "rtplot, whole pipeline": [r.rtplot_cpu for r in viewer_rows],
            },
            images,
            "bench-viewers.png",
            "viewers (5 symbols, one update per viewer per second)",
            "CPU, % of one core",
        ),
        "e2e": plots.distribution(
            {
                f"{r.clients:,} clients": [ms for run in r.runs for ms in run.latencies_ms]
                for r in e2e_rows
            },
            images,
            "bench-e2e.png",
            "bar written to Redis → client receipt, ms",
        ),
    }

    elapsed = time.monotonic() - started
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    if args.before:
        command += f" --before {args.before}"
    sections = [
        header(command, elapsed),
        targets(renders, sizes, results + beside, idle, scaled),
        render.markdown(plan.render_repeat, renders, sizes, rounds),
        f"![render cost]({pictures['render']})\n",
        scaleout.markdown(scaled),
        renderer_profiles_section(profile_dir),
        views.markdown(plan.render_repeat // 2, view_costs),
        fanout_section(results, beside, idle, plan, profile_dir),
        memory.markdown(shares, traced_kb, plan.memory_clients),
        f"![fan-out latency]({pictures['fanout']})\n\n![RSS per connection]"
        f"({pictures['memory']})\n",
        viewers.markdown(viewer_rows),
        f"![scaling with viewers]({pictures['viewers']})\n",
        e2e.markdown(e2e_rows),
        renderer_profile_section(profile_dir / "e2e-renderer.txt", plan),
        f"![end-to-end latency]({pictures['e2e']})\n",
        page.markdown(page_results, page_seconds, "python -m bench.page"),
        kept_changes(args.write),
    ]
    args.write.write_text("\n".join(s for s in sections if s))
    say(f"wrote {args.write} in {elapsed:.0f} s")


def header(command: str, elapsed: float) -> str:
    return (
        "# Benchmarks\n\n"
        f"Written by `.venv/bin/{command}` in {elapsed:.0f} s on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. "
        "Every figure is a median over repeated runs (the run count is given with each "
        "table); every ratio is measured in the same run.\n\n"
        "Targets: issue 6 (render at least 20x faster than the article and under 1 ms p50 "
        "for a day; a delta at least 100x smaller than a full figure), issue 11 (cost "
        "follows what is watched: renderer throughput, 500 symbols, a channel per room, "
        "Redis traffic), issue 12 (one gateway process: CPU per delivered update, "
        "10,000 clients inside 250 ms at p99, 20,000 idle clients, 25 KB per idle "
        "connection), issue 18 (the page in a browser: its own targets, in its section) "
        "and issue 20 (CPU per delivered update against the reference Socket.IO server, "
        "Node socket.io). The load generator runs on the same 2-core machine as what it "
        "measures and "
        "reports its own CPU: where it nears 100 %, it and the gateway each hold a core "
        "and latency measures the machine as much as the gateway.\n"
    )


def targets(
    renders: list[dict[str, Any]],
    sizes: list[dict[str, Any]],
    results: list[fanout.Result],
    idle: list[fanout.Idle],
    scaled: scaleout.Report,
) -> str:
    """Every issue's targets against this run's figures."""
    day_render, day_bytes = renders[0], sizes[0]
    rows = [
        (
            "render at least 20x faster than the article, 1 day",
            f"{day_render['ratio']:.0f}x",
            day_render["ratio"] >= 20,
        ),
        (
            "render p50 under 1 ms, 1 day",
            f"{day_render['rtplot_ms']:.3f} ms",
            day_render["rtplot_ms"] < 1,
        ),
        (
            "a delta at least 100x smaller than a full figure, 1 day",
            f"{day_bytes['ratio']:.0f}x",
            day_bytes["ratio"] >= 100,
        ),
        *scaleout.targets(scaled),
    ]
    rows += side_by_side_targets(results)
    results = [r for r in results if r.symbols_each == 1 and r.mode != "node"]
    for r in results:
        if r.mode == "asyncio" and r.payload == "delta" and r.clients in (2000, 10_000):
            rows.append(
                (
                    f"gateway CPU per delivered update at most 15 µs, asyncio, "
                    f"{r.clients:,} clients",
                    f"{r.us_per_delivery:.1f} µs",
                    r.us_per_delivery <= 15,
                )
            )
    top = max(r.clients for r in results)
    for r in results:
        if r.clients == top and r.mode != "stock":
            expected = top  # 20 symbols, one update each a second, clients round-robin
            rows.append(
                (
                    f"{top:,} clients on one {r.mode} gateway, p99 under 250 ms with every "
                    f"update delivered ({r.payload})",
                    f"{r.p99_ms:,.0f} ms, {r.delivered_per_s:,.0f} of {expected:,}/s",
                    r.p99_ms < 250 and r.connected == top and r.delivered_per_s >= expected,
                )
            )
    for i in idle:
        rows.append(
            (
                f"{fanout.IDLE_TARGET:,} idle clients on one {i.mode} process, all served, "
                "stopped within 10 s",
                f"{i.served:,} of {i.clients:,} served, stopped in {i.stop_seconds:.1f} s",
                i.served == i.clients == fanout.IDLE_TARGET and i.stop_seconds < 10,
            )
        )
        rows.append(
            (
                f"at most 25 KB RSS per idle connection, {i.mode}",
                f"{i.rss_kb_per_conn:.1f} KB",
                i.rss_kb_per_conn <= 25,
            )
        )
    lines = ["## Targets", "", "| target | this run | met |", "| --- | ---: | :---: |"]
    lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in rows]
    limit = [i for i in idle if i.clients < fanout.IDLE_TARGET]
    if limit:
        lines += [
            "",
            f"This machine lets a process hold {limit[0].clients + fanout.FILE_LIMIT_HEADROOM:,} "
            f"open files (a hard limit it cannot raise), so the idle row holds "
            f"{limit[0].clients:,} clients, not {fanout.IDLE_TARGET:,}.",
        ]
    return "\n".join(lines) + "\n"


def side_by_side_targets(results: list[fanout.Result]) -> list[tuple[str, str, bool]]:
    """Issue 20: the asyncio gateway's CPU per delivered update at most 0.6x the
    reference server's, clients watching 4 symbols each, same run."""
    rows = []
    for ours in results:
        if ours.mode != "asyncio" or ours.symbols_each != 4 or ours.tree != "this":
            continue
        for theirs in results:
            if theirs.mode == "node" and fanout.same_load(ours, theirs):
                ratio = ours.us_per_delivery / theirs.us_per_delivery
                rows.append(
                    (
                        f"gateway CPU per delivered update at most {REFERENCE_SHARE}x the "
                        f"reference Socket.IO server's, {ours.clients:,} clients x 4 symbols",
                        f"{ratio:.2f}x ({ours.us_per_delivery:.1f} against "
                        f"{theirs.us_per_delivery:.1f} µs)",
                        ratio <= REFERENCE_SHARE,
                    )
                )
    return rows


def renderer_profiles_section(profile_dir: Path) -> str:
    lines = []
    for name, title in (("before", "before (the whole window read and built)"), ("this", "now")):
        path = profile_dir / f"renderer-{name}.txt"
        hotspots = profiles.top(path, 10) if path.exists() else []
        if hotspots:
            lines += [
                f"### Where the renderer's time goes on 7-day windows, {title}",
                "",
                f"py-spy, {profiles.RATE} samples/s during the throughput run (collapsed "
                f"stacks in `docs/profiles/{path.name}`).",
                "",
                profiles.markdown(hotspots),
            ]
    return "\n".join(lines)


def fanout_section(
    results: list[fanout.Result],
    beside: list[fanout.Result],
    idle: list[fanout.Idle],
    plan: Plan,
    profile_dir: Path,
) -> str:
    lines = [
        "## Fan-out: one gateway process",
        "",
        f"20 symbols, one update per symbol per second for {plan.fanout_seconds:g} s; "
        "clients subscribed round-robin; loopback. *figure*: a 390-point figure (15 kB), "
        "as the issue specifies; *delta*: the small update the web page subscribes to. "
        "*stock* is python-socketio as its docs set it up (bench/stock_gateway.py), and "
        "*node* the reference Socket.IO server, Node socket.io with "
        "@socket.io/redis-adapter (bench/reference_gateway.mjs), for comparison; "
        "*spread* is one update's time from its first client to its last. "
        "*CPU per delivery* is the gateway's CPU time (user and system) over the updates "
        "its clients received; *of it in the kernel* is the system share: on loopback the "
        "kernel charges the receiving side's TCP work to the sender's `send`. "
        f"Median of {plan.repeats} run(s) per row. Reproduce one row with "
        "`.venv/bin/python -m bench.fanout --clients 10000 --modes asyncio "
        "--payload figure --repeats 3`.",
        "",
        fanout.table(results),
    ]
    if beside:
        lines += [
            "### Side by side with the reference Socket.IO server",
            "",
            f"{SIDE_BY_SIDE:,} clients, each watching 1 or 4 of the 20 symbols (4: as a page "
            "with four charts), deltas, on rtplot's asyncio gateway and on Node socket.io "
            "with @socket.io/redis-adapter, fed the same updates in its adapter's format; "
            "CPU per delivered update is each server process's CPU time over the updates "
            f"its clients received. Median of {plan.repeats} round(s), the two taking "
            "turns. Reproduce with `.venv/bin/python -m bench.fanout --clients 1000 "
            "--symbols-per-client 1 4 --modes asyncio node --payload delta --repeats 3`.",
            "",
            fanout.table(beside),
            fanout.ratios(beside),
        ]
    if idle:
        lines += [
            "### Idle connections",
            "",
            "Clients that connect, subscribe, receive their snapshot and then only stay "
            "connected (answering pings); then the gateway is sent SIGTERM, as compose "
            "stops it, and timed to its exit. Reproduce with `.venv/bin/python -m "
            f"bench.fanout --idle --clients {idle[0].clients} --modes asyncio eventlet`.",
            "",
            fanout.idle_table(idle),
        ]
    for path in sorted(profile_dir.glob("fanout-*.txt")):
        mode = path.stem.removeprefix("fanout-")
        hotspots = profiles.top(path, 12)
        if not hotspots:
            continue
        lines += [
            f"### Where the {mode} gateway's time goes, at {plan.fanout_counts[-1]:,} clients",
            "",
            f"py-spy, {profiles.RATE} samples/s while figures were published "
            f"(collapsed stacks in `docs/profiles/{path.name}`; "
            f"`.venv/bin/python -m bench.profiles docs/profiles/{path.name}` prints this).",
            "",
            profiles.markdown(hotspots),
        ]
    return "\n".join(lines)


def renderer_profile_section(path: Path, plan: Plan) -> str:
    hotspots = profiles.top(path, 12) if path.exists() else []
    if not hotspots:
        return ""
    return "\n".join(
        [
            f"### Where the renderer's time goes, under {plan.e2e_clients[-1]:,} clients",
            "",
            f"py-spy, {profiles.RATE} samples/s during the last end-to-end run (collapsed "
            f"stacks in `docs/profiles/{path.name}`). The renderer waits for change "
            "notices most of the time; what it does between is below.",
            "",
            profiles.markdown(hotspots),
        ]
    )


def kept_changes(document: Path) -> str:
    """The hand-kept log of optimisations, from the document being replaced."""
    if not document.exists():
        return ""
    text = document.read_text()
    return text[text.index(CHANGES) :] if CHANGES in text else ""


if __name__ == "__main__":
    main()
