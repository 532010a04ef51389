"""The end-to-end table for docs/benchmarks.md, and a run's figures as plain numbers."""

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.e2e.market import SYMBOLS, WINDOW_MINUTES
from bench.e2e.runs import WARMUP_TICKS, WAVE, ResultRow

BUSY_MACHINE = 25.0  # % of a core used by others in a run: worth a warning under the table


def command(results: Sequence[ResultRow]) -> str:
    clients = " ".join(str(c) for c in dict.fromkeys(r.clients for r in results))
    modes = " ".join(dict.fromkeys(r.mode for r in results))
    first = results[0]
    return (
        f"python -m bench.e2e --clients {clients} --seconds {first.seconds:g} "
        f"--repeats {first.repeats} --modes {modes}"
    )


def method(first: ResultRow) -> str:
    return (
        f"{len(SYMBOLS)} symbols, a day ({WINDOW_MINUTES} bars) each. Once a second the "
        "benchmark writes every symbol's minute in progress with the fetcher's own store "
        "(the Lua upsert and its change notice), noting the time just before each write; one "
        "`rtplot renderer` and one `rtplot gateway` carry it to lean WebSocket clients "
        f"subscribed round-robin in delta mode, like the page (connected {WAVE} at a time; "
        "subscribed = sent their snapshot). Each `bars` event is matched by symbol and seq "
        "to the writes it carries: latency = receipt - write over every (client, write), "
        "split where a probe on the delta rooms' Redis channels saw the delta published. "
        f"{first.seconds:g} s measured after {WARMUP_TICKS} warm-up writes; median of "
        f"{first.repeats} runs, each on fresh processes; delivered: share of (client, write) "
        "pairs that arrived (lowest run); CPU in % of one core; rest of the machine: kernel "
        "work charged to no process, and anything else running. All on loopback, load "
        f"generator included, on {os.cpu_count()} cores."
    )


def markdown(results: Sequence[ResultRow]) -> str:
    if not results:
        return "## End to end\n\nNo runs.\n"
    lines = [
        "## End to end",
        "",
        method(results[0]),
        "",
        f"Reproduce: `.venv/bin/{command(results)}`",
        "",
        "| gateway | clients | subscribed | p50 | p99 | write → queue p50 / p99 | "
        "queue → client p50 / p99 | delivered/s | delivered | renderer CPU | gateway CPU | "
        "Redis CPU | load generator CPU | rest of the machine |",
        "| --- |" + " ---: |" * 13,
    ]
    for r in results:
        lines.append(
            f"| {r.mode} | {r.clients:,} | {r.subscribed:,} | {r.p50_ms:.1f} ms | "
            f"{r.p99_ms:.1f} ms | {r.queue_p50_ms:.1f} / {r.queue_p99_ms:.1f} ms | "
            f"{r.relay_p50_ms:.1f} / {r.relay_p99_ms:.1f} ms | {r.delivered_per_s:,.0f} | "
            f"{r.delivered_share:.1%} | {r.renderer_cpu:.0f} % | {r.gateway_cpu:.0f} % | "
            f"{r.redis_cpu:.0f} % | {r.loadgen_cpu:.0f} % | {r.other_cpu:.0f} % |"
        )
    busiest = max((run.other_cpu for r in results for run in r.runs), default=0.0)
    if busiest > BUSY_MACHINE:
        lines += [
            "",
            f"Other work used up to {busiest:.0f} % of a core during a run: these figures "
            "measure a busy machine; rerun on a quiet one.",
        ]
    return "\n".join(lines) + "\n"


def summary(row: ResultRow) -> dict[str, Any]:
    """The row and its runs as plain numbers, without the raw latencies."""
    data = asdict(row)
    for run_data in data["runs"]:
        del run_data["latencies_ms"]
    return data
