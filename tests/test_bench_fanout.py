"""The fan-out benchmark's own parts: a tiny real run per gateway, and its summaries.

A benchmark measures and writes docs/benchmarks.md; its test only checks that it runs
and reports what it says it does, never how fast this machine was (CPU, latency, rate):
those are for the benchmark's own run, under the shared lock."""

from pathlib import Path

import pytest

from bench import fanout, memory, profiles, run

CLIENTS, SECONDS = 20, 2.0


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("mode", "payload"), [("stock", "figure"), ("stock", "delta"), ("asyncio", "delta")]
)
def test_a_tiny_run_times_every_update_each_client_is_sent(mode: str, payload: str) -> None:
    result = fanout.one_run(mode, CLIENTS, SECONDS, payload)
    assert result.connected == CLIENTS
    assert result.delivered_per_s > 0 and result.p50_ms <= result.p99_ms  # received, timed
    # One client per symbol: each update reaches one client, once, so it has no spread.
    assert result.spread_p50_ms == result.spread_p99_ms == 0
    row = fanout.table([result]).splitlines()[-1]
    assert row.startswith(f"| {mode} | {payload} | {CLIENTS} | {CLIENTS} |")
    assert row.count("|") == fanout.table([result]).splitlines()[0].count("|")


def test_the_profile_summary_counts_self_and_total_time(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(
        "main (app.py:1);loop (app.py:9);send (ws.py:3) 6\n"
        "main (app.py:1);loop (app.py:10);encode (json.py:7) 3\n"
        "main (app.py:1) 1\n"
    )
    rows = {h.function: (h.self_pct, h.total_pct) for h in profiles.top(stacks)}
    assert rows["send (ws.py)"] == (60.0, 60.0)
    assert rows["encode (json.py)"] == (30.0, 30.0)
    assert rows["main (app.py)"] == (10.0, 100.0)
    assert "loop (app.py)" not in rows  # never on top of a stack: no self time


def test_rewriting_the_document_keeps_the_hand_kept_log(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    document.write_text(f"# Old tables\n\n{run.CHANGES}\n\n- one change, before and after\n")
    assert run.kept_changes(document) == f"{run.CHANGES}\n\n- one change, before and after\n"
    assert run.kept_changes(tmp_path / "missing.md") == ""


@pytest.mark.e2e
def test_the_memory_breakdown_finds_each_connections_allocations() -> None:
    shares, total_kb = memory.measure(CLIENTS)
    by_library = {s.library: s.bytes_per_connection for s in shares}
    assert total_kb > 1  # a connection costs kilobytes, whatever the libraries
    assert by_library["python-engineio"] > 0 and by_library["rtplot's gateway"] > 0
    assert "| python-engineio |" in memory.markdown(shares, total_kb, CLIENTS)
