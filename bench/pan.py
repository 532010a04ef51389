"""Panning into the past, in a browser: from the relayout to that range's bars drawn.

    .venv/bin/python -m bench.pan                  # 5m candles, days 10 to 55 back
    .venv/bin/python -m bench.pan --write docs/benchmarks.md   # its section, in place

A private pipeline (``rtplot up``'s four services, the synthetic market in New York's
sessions, ``RTPLOT_MARKET_HOURS=exchange``, default history depths: 60 days of 5m
bars) and Debian's Chromium, headless. The page holds one 5m candle chart with SMA 20
and a volume pane; once its history is stored, the chart is dragged
(``Plotly.relayout`` of the x range, as a drag ends) to the session of a weekday N
days back, for N from 10 to 55, each from the live chart (a fresh page each), and
then day by day back from the oldest bar held (a person dragging on). Each pan is
timed from the relayout to the frame after that day's bars are drawn (the chart's
``dirty`` flag cleared by the page's draw), with the history requests it made and
the rows they brought. The issue's target (19): a 5m chart 30 days back within
300 ms on loopback.
"""

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from bench.page import Browser, replace_section
from rtplot.processes import Stack

SECTION = "Panning into the past"
VIEW = "candles,5m,sma20"
READY = """() => {
    const c = window.rtplot && window.rtplot.charts.get("AAPL");
    return !!(c && c.drawn && c.card.dataset.loadingHistory === "no"
              && c.data[0].x.length >= 1500);
}"""
# Drag the chart to the session of the weekday ``days`` before its newest bar (or, with
# ``fromOldest``, before its oldest bar held) and wait for that session's bars drawn.
PAN = """async ([days, fromOldest]) => {
    const chart = window.rtplot.charts.get("AAPL");
    const DAY = 86400000;
    const xs = () => chart.data[0].x;
    const anchor = fromOldest ? xs()[0] : xs()[xs().length - 1];
    let day = Math.floor(anchor / DAY) * DAY - days * DAY;
    while ([0, 6].includes(new Date(day).getUTCDay())) day -= DAY;
    const [lo, hi] = [day + 9.5 * 3600000, day + 16 * 3600000];
    const loads = window.rtplot.stats.pastLoads;
    const started = performance.now();
    await Plotly.relayout(chart.plot, {"xaxis.range": [lo, hi]});
    const inDay = () => xs().filter((x) => lo <= x && x < hi).length;
    // Drawn: the data Plotly was last given has bars of that day.
    const drawnInDay = () => (chart.plot.data || [{x: []}])[0].x.some((x) => lo <= x && x < hi);
    await new Promise((resolve) => {
        const check = () => {
            if (drawnInDay() && !chart.pastAsked) resolve();
            else requestAnimationFrame(check);
        };
        check();
    });
    await new Promise((resolve) => requestAnimationFrame(resolve));  // painted
    return {ms: performance.now() - started, requests: window.rtplot.stats.pastLoads - loads,
            bars: inDay(), held: xs().length};
}"""


def stack() -> Stack:
    return Stack(
        symbols="AAPL",
        source="synthetic",
        fetch_interval=1,
        market_hours="exchange",
        log_level="WARNING",
    )


def open_chart(browser: Browser, base: str) -> Any:
    context = browser.browser.new_context(viewport={"width": 1000, "height": 600})
    page = context.new_page()
    page.goto(f"{base}/?symbols=AAPL&view={VIEW}")
    deadline = time.monotonic() + 120
    while not page.evaluate(READY):
        if time.monotonic() > deadline:
            raise TimeoutError("AAPL's 5m chart never held its history")
        time.sleep(0.2)
    time.sleep(1.0)  # its first draws settle
    return context, page


def run(days: list[int], steps: int) -> dict[str, Any]:
    browser = Browser()
    try:
        with stack() as running:
            for service in ("worker", "beat", "renderer"):
                running.launch(service)
            base = running.launch("gateway").url
            running.wait_healthy()
            running.wait_snapshots(["AAPL"], timeout=120)
            jumps = []
            for back in days:
                context, page = open_chart(browser, base)
                try:
                    jumps.append({"days": back, **page.evaluate(PAN, [back, False])})
                finally:
                    context.close()
            context, page = open_chart(browser, base)
            try:
                walk = [page.evaluate(PAN, [1, True]) for _ in range(steps)]
            finally:
                context.close()
    finally:
        browser.close()
    return {"jumps": jumps, "walk": walk}


def summary(got: dict[str, Any]) -> str:
    jumps, walk = got["jumps"], got["walk"]
    lines = [
        "| pan | relayout to drawn | requests | bars of that day |",
        "| --- | --- | --- | --- |",
    ]
    for jump in jumps:
        lines.append(
            f"| from the live chart to {jump['days']} days back | {jump['ms']:.0f} ms "
            f"| {jump['requests']} | {jump['bars']} |"
        )
    walked = [step["ms"] for step in walk]
    lines.append(
        f"| day by day back from the oldest held ({len(walk)} steps) | median "
        f"{statistics.median(walked):.0f} ms, max {max(walked):.0f} ms "
        f"| {sum(s['requests'] for s in walk)} | {min(s['bars'] for s in walk)} or more |"
    )
    thirty = [j["ms"] for j in jumps if j["days"] == 30]
    verdict = (
        f"30 days back: {thirty[0]:.0f} ms (target 300 ms: "
        f"{'met' if thirty[0] <= 300 else 'missed'})"
        if thirty
        else ""
    )
    return "\n".join(lines) + ("\n\n" + verdict if verdict else "")


def markdown(got: dict[str, Any], command: str) -> str:
    return (
        f"## {SECTION}\n\n"
        f"`{command}` (one 5m candle chart with SMA 20 in New York's sessions, a fresh\n"
        "page for each jump; see bench/pan.py). A jump asks for the session shown (one\n"
        "`history` request), not the weeks in between:\n\n" + summary(got) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", default="10,20,30,40,55", help="days back to jump to")
    parser.add_argument("--steps", type=int, default=10, help="day-by-day pans")
    parser.add_argument("--write", type=Path, help="replace its section of this document")
    args = parser.parse_args()
    got = run([int(d) for d in args.days.split(",")], args.steps)
    print(summary(got))
    if args.write:
        command = "python -m bench.pan"
        text = args.write.read_text()
        args.write.write_text(replace_section(text, markdown(got, command), f"## {SECTION}\n"))
