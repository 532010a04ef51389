"""The browser benchmark at a tiny size: it runs and reports every figure, for a first and
a repeat visit, on loopback and on the emulated link. Never how fast the machine was.

Run as the command a reader would type (``python -m bench.page``), in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

pytestmark = pytest.mark.e2e


def test_bench_page_reports_each_visit(tmp_path: Path) -> None:
    out = tmp_path / "page.json"
    argv = [sys.executable, "-m", "bench.page", "--only", "", "--charts", "1", "--visits"]
    result = subprocess.run(
        [*argv, "--seconds", "2", "--window", "390", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "## The page in a browser" in result.stdout
    rows = json.loads(out.read_text())
    assert [(r["scenario"]["link"], r["scenario"]["repeat"]) for r in rows] == [
        (False, False),
        (True, False),
        (False, True),
        (True, True),
    ]
    for row in rows:
        assert row["drawn_all_s"] is not None and row["drawn_all_s"] > 0
        assert 0 < row["busy"] <= 1.5 and row["heap_mb"] > 0 and row["live_s"] >= 2
        assert row["seen"] == 1 and row["ws_bytes_to_drawn"] > 0
        assert row["deltas_per_s"] > 0 and row["draws_per_s"] >= 0  # (a redraw may wait its turn)
    first, repeat = rows[0], rows[2]
    assert first["scripts_fetched"] == 4 and first["http_bytes"] > 400_000
    assert repeat["scripts_fetched"] == 0  # kept by the browser: what the page's caching is for


def test_a_profiles_summary_is_of_busy_time_with_each_functions_total(tmp_path: Path) -> None:
    from bench.page import profile_summary

    def frame(name: str, line: int) -> dict[str, object]:
        return {"functionName": name, "url": "http://x/p.js", "lineNumber": line - 1,
                "columnNumber": 0}  # fmt: skip

    nodes = [
        {"id": 1, "callFrame": frame("(root)", 0), "children": [2, 3]},
        {"id": 2, "callFrame": frame("(idle)", 0)},
        {"id": 3, "callFrame": frame("draw", 1), "children": [4]},
        {"id": 4, "callFrame": frame("style", 2)},
    ]
    # 60 us idle, then draw 10 us on its own and 30 us in style: 40 us busy.
    profile = {"nodes": nodes, "samples": [2, 3, 4, 4, 4], "timeDeltas": [60, 10, 10, 10, 10]}
    path = tmp_path / "p.cpuprofile"
    path.write_text(json.dumps(profile))
    lines = profile_summary(path).splitlines()
    assert lines[2:] == [
        "| 75.0 % | 75.0 % | `style p.js:2:1` |",
        "| 25.0 % | 100.0 % | `draw p.js:1:1` |",
    ]
