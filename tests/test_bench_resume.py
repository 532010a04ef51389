"""bench.resume runs and reports both storms (how fast this machine was is the
benchmark's business, not the test's)."""

import pytest

from bench import resume

pytestmark = pytest.mark.e2e


def test_the_resume_benchmark_runs_both_storms_and_reports_them() -> None:
    storms = resume.run(clients=8, away=1.0, window_minutes=120)
    by_kind = {storm.kind: storm for storm in storms}
    resumed, snapshot = by_kind["resume (since)"], by_kind["snapshot (no since)"]
    assert resumed.resumed == 8 and snapshot.resumed == 0
    # A snapshot is the whole 2-hour figure; a resume, the bars of a second or two.
    assert resumed.bytes_per_client < snapshot.bytes_per_client / 5
    assert resumed.row().startswith("| resume (since) | 8 |")
