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


def test_both_sides_serve_every_viewer(benchmark: tuple[str, list[dict[str, float]]]) -> None:
    _, rows = benchmark
    assert [row["viewers"] for row in rows] == list(VIEWERS)
    for row in rows:
        for side in ("rtplot", "article"):  # each viewer got updates from each side
            assert row[f"{side}_served"] == row["viewers"], (side, row)
            assert row[f"{side}_updates_per_s"] > 0, (side, row)


def test_each_row_reports_every_reading(benchmark: tuple[str, list[dict[str, float]]]) -> None:
    """What a row says, not how fast this machine was: the readings are the benchmark's."""
    _, rows = benchmark
    readings = {"rtplot_cpu", "rtplot_gateway_cpu", "article_cpu", "cpu_ratio"}
    readings |= {"article_cpu_needed", "article_ms_per_update", "loadgen_cpu_rtplot"}
    for row in rows:
        assert readings <= row.keys(), row
        assert all(row[name] >= 0 for name in readings), row


def test_the_markdown_has_a_row_per_viewer_count(
    benchmark: tuple[str, list[dict[str, float]]],
) -> None:
    markdown, rows = benchmark
    assert markdown.startswith("## Scaling with viewers")
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[2:]] == ["2", "4"]
    assert f"{rows[0]['rtplot_updates_per_s']:,.0f} / " in table[2]
    assert "python -m bench.viewers --viewers 2 4 --seconds 3 --repeats 1" in markdown
