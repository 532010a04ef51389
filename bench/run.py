"""Run the benchmarks and write docs/benchmarks.md.

    .venv/bin/python -m bench.run           # 1k, 2k, 5k and 10k clients
    .venv/bin/python -m bench.run --quick   # 1k and 2k clients, fewer repeats (~2 min)

Every figure comes from this one run on this machine; ratios are measured in the same
process. Still to come (issue 6): scaling with viewers against the article's per-client
loop, end-to-end latency under load, plots and profiles.
"""

import argparse
import os
import platform
import time
from pathlib import Path

from bench import fanout, render

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", type=Path, default=DOC)
    args = parser.parse_args()
    counts = [1000, 2000] if args.quick else [1000, 2000, 5000, 10_000]
    repeat = 50 if args.quick else 200
    seconds = 5.0 if args.quick else 10.0
    started = time.monotonic()
    sections = [render.markdown(repeat)]
    results = [
        fanout.one_run(mode, count, seconds) for count in counts for mode in ("asyncio", "eventlet")
    ]
    sections.append(fanout.markdown(results, seconds))
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    header = (
        "# Benchmarks\n\n"
        f"Written by `.venv/bin/{command}` in {time.monotonic() - started:.0f} s on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.\n"
        "Each render figure is a median over repeated runs; each ratio is measured in the "
        "same run.\n\n"
        "Targets (issue 6): render at least 20x faster than the article and under 1 ms p50 "
        "for a day; a delta at least 100x smaller than a full figure; 10,000 clients on one "
        "gateway process with p99 under 250 ms and at most 30 KB RSS per idle connection. "
        "The load generator runs on the same machine: where its CPU nears 100 % it and the "
        "gateway each hold one of the two cores, and latency measures the machine as much "
        "as the gateway.\n\n"
    )
    args.write.write_text(header + "\n".join(sections))
    print(args.write.read_text())


if __name__ == "__main__":
    main()
