"""The end-to-end benchmark (bench/e2e/): its matching of receipts to writes, and a
tiny run of the real pipeline that must time every update it delivers. (It checks that
the benchmark runs and reports; how fast, the benchmark says, under the shared lock.)"""

import pytest

from bench import e2e

CLIENTS, SECONDS = 5, 3


def test_a_coalesced_receipt_times_each_write_it_carries() -> None:
    writes = [("A", 2, 10.0), ("A", 3, 11.0), ("A", 4, 12.0), ("B", 2, 11.0)]
    receipts = [
        ("A", 1, 2, 10.5),  # a warm-up write: delivered, not measured
        ("A", 2, 4, 12.25),  # the renderer coalesced versions 3 and 4
        ("B", 1, 2, 11.1),
        ("B", 2, 3, 13.0),  # a version nobody wrote
    ]
    published = {("A", 4): 12.0, ("B", 2): 11.05}  # the probe missed ("A", 2)
    matched = e2e.match(receipts, writes, measured_from=11.0, published=published)
    assert matched.latencies == pytest.approx([1.25, 0.25, 0.1])
    # The split is per (client, write) too, and its halves add up to the latency.
    assert matched.to_queue == pytest.approx([1.0, 0.0, 0.05])
    assert matched.from_queue == pytest.approx([0.25, 0.25, 0.05])
    assert matched.coalesced == 1
    assert matched.unmatched == 1


def test_a_receipt_before_its_write_is_not_a_latency() -> None:
    matched = e2e.match([("A", 1, 2, 9.0)], [("A", 2, 10.0)], measured_from=0.0)
    assert matched.latencies == [] and matched.unmatched == 1


@pytest.mark.e2e
def test_a_tiny_run_times_every_update_it_delivers() -> None:
    [row] = e2e.run([CLIENTS], SECONDS, repeats=1)
    [result] = row.runs
    assert result.connected == result.subscribed == CLIENTS
    # Every client's symbol is written once a second: each write reaches its one client,
    # and is timed, and split where the probe saw it published. How long that took is
    # the benchmark's to say, not this test's.
    assert result.expected == CLIENTS * SECONDS
    assert result.deliveries == result.expected == len(result.latencies_ms)
    assert result.unmatched == 0 and row.delivered_share == 1.0
    assert row.p50_ms <= row.p99_ms <= row.max_ms
    assert row.queue_p50_ms <= row.queue_p99_ms and row.relay_p50_ms <= row.relay_p99_ms

    table = e2e.markdown([row])
    assert table.startswith("## End to end\n")
    assert f"| asyncio | {CLIENTS} | {CLIENTS} | {row.p50_ms:.1f} ms |" in table
    assert "`.venv/bin/python -m bench.e2e --clients 5 --seconds 3 --repeats 1" in table
    assert "latencies_ms" not in e2e.summary(row)["runs"][0]
