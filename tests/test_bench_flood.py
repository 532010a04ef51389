"""bench.flood runs and reports (how fast this machine was is the benchmark's business,
not the test's)."""

import pytest

from bench import flood

pytestmark = pytest.mark.e2e


def test_the_flood_benchmark_runs_and_reports() -> None:
    result = flood.run(connections=3, views=4, seconds=3, window_minutes=60, capped=True)
    assert result.accepted + sum(result.refused.values()) == 12
    assert result.views >= 1 and result.updates_per_s > 0
    assert result.row().startswith("| yes (defaults) | ")
    assert len(flood.all_views()) == 479  # 3 charts x 5 timeframes x 16 x 2, less the default
