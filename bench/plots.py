"""PNG plots of a benchmark run, for docs/benchmarks.md.

matplotlib draws off-screen (the Agg backend); each function takes the rows a benchmark
module returned and writes one PNG, returning its path relative to docs/.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a CI machine or a server

import matplotlib.pyplot as plt  # after use(): the backend must be chosen first

COLOURS = {
    "stock": "tab:grey",
    "asyncio": "tab:blue",
    "eventlet": "tab:orange",
    "node": "tab:green",
}


def _save(figure: Any, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(folder / name, dpi=110)
    plt.close(figure)
    return f"images/{name}"


def render_cost(rows: Sequence[dict[str, Any]], folder: Path) -> str:
    figure, axes = plt.subplots(figsize=(7, 3.2))
    labels = [row["window"] for row in rows]
    positions = range(len(rows))
    axes.barh([p + 0.2 for p in positions], [r["article_ms"] for r in rows], 0.4, label="article")
    axes.barh([p - 0.2 for p in positions], [r["rtplot_ms"] for r in rows], 0.4, label="rtplot")
    axes.set_yticks(list(positions), labels)
    axes.set_xscale("log")
    axes.set_xlabel("render + JSON per update, ms (log scale)")
    axes.legend()
    return _save(figure, folder, "bench-render.png")


def fanout_latency(results: Sequence[Any], folder: Path) -> str:
    """p50 and p99 against clients, one line per mode and payload."""
    figure, axes = plt.subplots(figsize=(7, 4))
    series: dict[tuple[str, str], list[Any]] = {}
    for r in results:
        series.setdefault((r.mode, r.payload), []).append(r)
    for (mode, payload), rows in series.items():
        rows.sort(key=lambda r: r.clients)
        clients = [r.clients for r in rows]
        style = "-" if payload == "figure" else ":"
        colour = COLOURS.get(mode)
        for quantile, marker, alpha in (("p99", "o", 1.0), ("p50", ".", 0.5)):
            axes.plot(
                clients,
                [getattr(r, f"{quantile}_ms") for r in rows],
                style,
                marker=marker,
                color=colour,
                alpha=alpha,
                label=f"{mode}, {payload}, {quantile}",
            )
    axes.axhline(250, color="red", linewidth=0.8, label="target p99 250 ms")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("clients on one gateway process")
    axes.set_ylabel("publish to receipt, ms")
    axes.legend(fontsize=7, ncol=2)
    return _save(figure, folder, "bench-fanout.png")


def fanout_memory(results: Sequence[Any], folder: Path) -> str:
    figure, axes = plt.subplots(figsize=(7, 3.2))
    modes = sorted({r.mode for r in results}, key=list(COLOURS).index)
    for mode in modes:
        rows = sorted(
            (r for r in results if r.mode == mode and r.payload == "figure"),
            key=lambda r: r.clients,
        )
        axes.plot(
            [r.clients for r in rows],
            [r.rss_kb_per_conn for r in rows],
            marker="o",
            color=COLOURS.get(mode),
            label=mode,
        )
    axes.axhline(30, color="red", linewidth=0.8, label="target 30 KB")
    axes.set_xscale("log")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("clients on one gateway process")
    axes.set_ylabel("RSS per idle connection, KB")
    axes.legend(fontsize=8)
    return _save(figure, folder, "bench-memory.png")


def lines(
    x: Sequence[float],
    ys: dict[str, Sequence[float]],
    folder: Path,
    name: str,
    xlabel: str,
    ylabel: str,
    log: bool = True,
) -> str:
    """A plain line plot, one line per named series."""
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for label, values in ys.items():
        axes.plot(x, values, marker="o", label=label)
    if log:
        axes.set_xscale("log")
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(fontsize=8)
    return _save(figure, folder, name)


def distribution(samples: dict[str, Sequence[float]], folder: Path, name: str, xlabel: str) -> str:
    """Cumulative distributions, one per named sample."""
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for label, values in samples.items():
        ordered = sorted(values)
        if ordered:
            axes.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("fraction of receipts")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, folder, name)
