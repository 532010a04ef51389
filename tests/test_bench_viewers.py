"""The scaling-with-viewers benchmark, at a tiny size: both sides really serve viewers.

Run as the command a reader would type (``python -m bench.viewers``), in a subprocess:
``bench`` is not an installed package, and the benchmark's clients and children stay out
of this test process.
"""

import json
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.e2e

VIEWERS = (2, 4)


@pytest.fixture(scope="module")
def benchmark() -> tuple[str, list[dict[str, float]]]:
    argv = [sys.executable, "-m", "bench.viewers", "--viewers", *map(str, VIEWERS)]
    result = subprocess.run(
        [*argv, "--seconds", "3", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    *markdown, last = result.stdout.strip().splitlines()
    return "\n".join(markdown), json.loads(last)


def test_both_sides_deliver_an_update_a_second_to_every_viewer(
    benchmark: tuple[str, list[dict[str, float]]],
) -> None:
    _, rows = benchmark
    assert [row["viewers"] for row in rows] == list(VIEWERS)
    for row in rows:
        viewers = row["viewers"]
        # Few viewers: neither side is saturated, so each gets about one update per tick.
        for side in ("rtplot", "article"):
            assert row[f"{side}_served"] == viewers, (side, row)
            assert 0.5 * viewers <= row[f"{side}_updates_per_s"] <= 1.5 * viewers, (side, row)


def test_cpu_is_read_for_both_sides_and_the_load_generator(
    benchmark: tuple[str, list[dict[str, float]]],
) -> None:
    _, rows = benchmark
    for row in rows:
        assert 0 < row["rtplot_gateway_cpu"] < row["rtplot_cpu"], row
        assert row["article_cpu"] > 0 and row["loadgen_cpu_rtplot"] > 0, row
        assert row["cpu_ratio"] == pytest.approx(row["article_cpu"] / row["rtplot_cpu"])
        assert row["article_cpu_needed"] > 0 and row["article_ms_per_update"] > 0, row


def test_the_markdown_has_a_row_per_viewer_count(
    benchmark: tuple[str, list[dict[str, float]]],
) -> None:
    markdown, rows = benchmark
    assert markdown.startswith("## Scaling with viewers")
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[2:]] == ["2", "4"]
    assert f"{rows[0]['rtplot_updates_per_s']:,.0f} / " in table[2]
    assert "python -m bench.viewers --viewers 2 4 --seconds 3 --repeats 1" in markdown
