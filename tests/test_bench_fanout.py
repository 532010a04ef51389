"""The fan-out benchmark's own parts: a tiny real run per gateway, and its summaries.

A benchmark measures and writes docs/benchmarks.md; its test only checks that it runs
and reports what it says it does, never how fast this machine was (CPU, latency, rate):
those are for the benchmark's own run, under the shared lock."""

from collections import Counter
from dataclasses import replace
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


@pytest.mark.e2e
def test_the_reference_server_is_fed_and_measured_as_a_peer() -> None:
    """Node socket.io with its Redis adapter, clients watching 4 symbols each."""
    result = fanout.one_run("node", CLIENTS, SECONDS, "delta", per_client=4)
    assert result.connected == CLIENTS and result.symbols_each == 4
    # 20 clients x 4 symbols, one update per symbol per second: 80 deliveries a second.
    assert result.delivered_per_s == pytest.approx(4 * CLIENTS, rel=0.25)
    assert 0 < result.p50_ms <= result.p99_ms < 5000
    assert result.rss_kb_per_conn > 0
    table = fanout.ratios([result, replace(result, mode="asyncio", us_per_delivery=50.0)])
    assert f"| asyncio | 20 x 4 | delta | 50.0 µs | {result.us_per_delivery:.1f} µs |" in table


def test_each_client_watches_distinct_symbols_and_each_symbol_as_many_clients() -> None:
    watching = [fanout.watched(i, 4) for i in range(100)]
    assert all(len(set(symbols)) == 4 for symbols in watching)
    counts = Counter(symbol for symbols in watching for symbol in symbols)
    assert set(counts) == set(fanout.SYMBOLS) and set(counts.values()) == {20}
    assert [fanout.watched(i, 1) for i in range(3)] == [["SYM00"], ["SYM01"], ["SYM02"]]


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


def test_the_side_by_side_target_compares_like_with_like() -> None:
    base = fanout.Result("asyncio", "delta", 1000, 1000, 4, "this", *[1.0] * 10)
    rows = [
        replace(base, us_per_delivery=12.0),
        replace(base, mode="asyncio", tree="before", us_per_delivery=24.0),
        replace(base, mode="node", us_per_delivery=30.0),
        replace(base, mode="node", symbols_each=1, us_per_delivery=6.0),
    ]
    targets = run.side_by_side_targets(rows)
    assert [(value, met) for _, value, met in targets] == [("0.40x (12.0 against 30.0 µs)", True)]
    targets = run.side_by_side_targets([replace(base, us_per_delivery=24.0), rows[2]])
    assert [(value, met) for _, value, met in targets] == [("0.80x (24.0 against 30.0 µs)", False)]
