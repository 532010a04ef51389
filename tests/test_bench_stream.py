"""bench.stream and bench.stream_soak run small, and what they report holds: every
trade shown, every symbol live again after a drop, every stored minute exactly the
trades sent (how fast this machine was is the benchmarks' business, not the test's)."""

import argparse
import asyncio
import subprocess
import sys

import pytest

from bench import stream
from support import ROOT

pytestmark = pytest.mark.e2e


def test_the_stream_benchmark_shows_every_trade_and_recovers_from_a_drop() -> None:
    args = argparse.Namespace(symbols=12, rate=5.0, seconds=3.0, outage=2.0, after=3.0)
    report = asyncio.run(stream.run(args))
    assert report["trades"] == 12 * 5 * 3 and report["missing"] == 0
    assert 0 < float(report["p50_ms"]) <= float(report["p99_ms"])  # type: ignore[arg-type]
    assert report["outage"]["every_symbol_live_again_s"] is not None  # type: ignore[index]


def test_the_soak_finds_every_stored_minute_equal_to_the_trades_sent() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.stream_soak", "--symbols", "10", "--minutes", "0.1",
         "--every", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert ", 0 wrong" in result.stdout, result.stdout
    assert "| stream RSS (MB) |" in result.stdout
