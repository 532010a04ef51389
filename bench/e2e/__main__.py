"""``python -m bench.e2e``: see the package's notes (bench/e2e/__init__.py)."""

import argparse
import sys
import time
from pathlib import Path

import orjson

import bench.e2e
from bench.e2e.report import markdown, summary
from bench.e2e.runs import run


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e", description=bench.e2e.__doc__.split("\n\n")[0]
    )
    parser.add_argument("--clients", type=int, nargs="+", help="default 1000 5000")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (default 10)")
    parser.add_argument("--repeats", type=int, help="runs per row, median taken (default 3)")
    parser.add_argument("--modes", nargs="+", choices=("asyncio", "eventlet"))
    parser.add_argument("--quick", action="store_true", help="1,000 clients, 5 s, one run")
    parser.add_argument("--raw", type=Path, help="write every latency (ms) here as JSON")
    args = parser.parse_args()
    quick = args.quick
    clients = args.clients or ([1000] if quick else [1000, 5000])
    seconds = args.seconds or (5.0 if quick else 10.0)
    repeats = args.repeats or (1 if quick else 3)
    modes = args.modes or (["asyncio"] if quick else ["asyncio", "eventlet"])
    started = time.monotonic()
    results = run(clients, seconds, repeats, modes)
    print(markdown(results))
    print(orjson.dumps([summary(r) for r in results]).decode())
    print(f"bench.e2e took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.raw:
        raw = [
            {"mode": r.mode, "clients": r.clients, "latencies_ms": r.latencies_ms} for r in results
        ]
        args.raw.write_bytes(orjson.dumps(raw))


if __name__ == "__main__":
    main()
