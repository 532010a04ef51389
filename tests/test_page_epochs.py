"""Redis comes back empty while the page's charts are open: versions start again from 1
in a new epoch, and every chart takes the new epoch's figure and moves on, where a page
that kept the highest seq it had seen would freeze until the new seqs passed the old."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from bench.page import CHROMIUM, CHROMIUM_ARGS
from support import Pipeline, record_reliability, running, wait_until

pytestmark = pytest.mark.e2e

SYMBOLS = ["AAPL", "MSFT", "TSLA", "BRK-B"]


@pytest.fixture
def stack() -> Iterator[Pipeline]:
    # Redis as `rtplot up` runs it: nothing on disk, so a restart comes back empty.
    services = ("worker", "beat", "renderer", "gateway")
    with running(*services, symbols=",".join(SYMBOLS)) as pipeline:
        yield pipeline


def charts(page: Any) -> dict[str, dict[str, Any]]:
    return dict(
        page.evaluate(
            """symbols => Object.fromEntries(symbols.map(s => {
                const chart = window.rtplot.charts.get(s);
                return [s, chart && chart.drawn ? {seq: chart.seq, epoch: chart.epoch,
                        status: chart.card.dataset.status} : null];
            }))""",
            SYMBOLS,
        )
    )


def test_every_chart_is_live_again_after_redis_comes_back_empty(stack: Pipeline) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(stack.url("gateway") + "/?symbols=" + ",".join(SYMBOLS))
        # Long enough that the old seqs are well ahead of where the new ones start.
        before = wait_until(
            lambda: (
                (c := charts(page))
                and all(v and v["seq"] and v["seq"] >= 8 for v in c.values())
                and c
            ),
            timeout=60,
            message="every chart drawn, past seq 8",
        )
        stack.redis.stop()
        time.sleep(2)
        stack.redis.start()  # empty: no persistence
        back_at = time.monotonic()

        def moving_in_a_new_epoch() -> dict[str, dict[str, Any]] | None:
            now = charts(page)
            fresh = all(
                now[s]
                and now[s]["epoch"] != before[s]["epoch"]
                and now[s]["seq"] >= 3
                and now[s]["status"] == "live"
                for s in SYMBOLS
            )
            return now if fresh else None

        after = wait_until(
            moving_in_a_new_epoch,
            timeout=30,
            interval=0.2,
            message="every chart live in a new epoch",
        )
        recovered = time.monotonic() - back_at
        browser.close()
    assert errors == []
    # The new epoch's seqs started again below the old ones: only the epoch let them in.
    assert all(after[s]["seq"] < before[s]["seq"] + recovered + 5 for s in SYMBOLS)
    record_reliability(
        "faults",
        {
            "fault": "Redis restarted empty (no persistence) with the page's four charts open",
            "outcome": "versions started again in a new epoch; every chart took the new "
            "epoch's figure and kept moving, without a reload",
            "recovery_s": round(recovered, 1),
            "lost": "the window's bars until the next backfill (one tick)",
        },
    )
    assert recovered < 15, f"the charts were live again {recovered:.1f} s after Redis returned"
