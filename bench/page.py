"""The page in a browser: what a person's machine spends on rtplot's charts.

    .venv/bin/python -m bench.page                 # every scenario (about 10 minutes)
    .venv/bin/python -m bench.page --quick         # fewer scenarios, 8 s live each
    .venv/bin/python -m bench.page --write docs/benchmarks.md   # its section, in place
    .venv/bin/python -m bench.page --only candles,5m --charts 4 --profile /tmp/page.cpuprofile

A private pipeline (``rtplot up``'s four services, the synthetic source, 7 days of
1-minute bars per symbol, one tick a second) and Debian's Chromium, headless, driven
by Playwright and the DevTools protocol, in a 1,400 x 900 viewport. Each scenario opens
the page in a fresh browser context (an empty cache) with 1, 4 or 16 charts of one
view and reports:

- *drawn*: from navigation to the moment every chart in view was drawn (the page's
  ``rtplot:drawn`` performance marks), first and all;
- *busy*: the main thread's share of wall time while live, from the DevTools
  ``Performance.getMetrics`` ``TaskDuration`` over the live window;
- *long tasks*: the longest task while live, from a ``longtask`` PerformanceObserver,
  and how many went over 50 ms;
- *heap*: the JS heap in use at the end;
- *HTTP* and *WebSocket*: bytes received, from the DevTools Network events (HTTP:
  encoded, headers included; WebSocket: frame payloads, until drawn and per second
  while live);
- *draws*: Plotly calls per second while live (a chart out of view draws none).

The first and repeat visit, on loopback and on an emulated 10 Mbit/s, 40 ms link
(``Network.emulateNetworkConditions``), say what a browser downloads again: *scripts
fetched* counts scripts that came over the network, not from the browser's cache.
``--profile PATH`` saves a DevTools CPU profile of the live window of the scenarios
run (``--only``/``--charts`` pick them; open it in Chromium's DevTools) and prints
where the time went.
"""

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtplot.processes import Stack

SYMBOLS = ["AAPL", "MSFT", "TSLA", "BRK-B", "NVDA", "AMZN", "GOOG", "META"]
SYMBOLS += ["NFLX", "AMD", "INTC", "IBM", "ORCL", "CSCO", "ADBE", "CRM"]
WINDOW_MINUTES = 10_080  # rtplot up's default: 7 days
CHROMIUM = "/usr/bin/chromium"
# As root and offline: no sandbox, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]
VIEWPORT = {"width": 1400, "height": 900}
LINK = {  # 10 Mbit/s each way, 40 ms
    "offline": False,
    "latency": 40,
    "downloadThroughput": 10_000_000 / 8,
    "uploadThroughput": 10_000_000 / 8,
}
KINDS = {  # a name for the table: the page's view words
    "mountain 1m (the article's)": "",
    "candles 5m, volume": "candles,5m",
    "OHLC 1m, volume": "ohlc,1m",
    "candles 1m, SMA 20, volume": "candles,1m,sma20",
}
COUNTS = [1, 4, 16]
DRAW_TIMEOUT = 60.0  # seconds to wait for every chart in view to be drawn
LONG_TASK_MS = 50

# Installed before the page's own scripts: every long task, kept for bench to read.
OBSERVE_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__longTasks.push([entry.startTime, entry.duration]);
  }
}).observe({type: "longtask", buffered: true});
"""
DRAWN = """() => {
  const charts = [...(window.rtplot ? window.rtplot.charts.values() : [])];
  const seen = charts.filter((c) => c.seen);
  const marks = performance.getEntriesByName("rtplot:drawn").map((m) => m.startTime);
  return {charts: charts.length, seen: seen.length,
          drawn: seen.filter((c) => c.drawn).length, marks};
}"""


@dataclass
class Scenario:
    kind: str
    charts: int
    link: bool = False  # the emulated 10 Mbit/s, 40 ms link instead of loopback
    repeat: bool = False  # a second visit in the same browser context

    @property
    def name(self) -> str:
        visit = "repeat visit" if self.repeat else "first visit"
        where = "10 Mbit/s, 40 ms" if self.link else "loopback"
        return f"{self.kind} · {self.charts} · {visit}, {where}"


@dataclass
class Result:
    scenario: Scenario
    drawn_first_s: float | None  # None: not drawn within DRAW_TIMEOUT
    drawn_all_s: float | None
    busy: float  # share of wall time
    longest_task_ms: float
    long_tasks: int  # over LONG_TASK_MS while live
    heap_mb: float
    http_bytes: int
    scripts_fetched: int
    ws_bytes_to_drawn: int
    ws_bytes_per_s: float
    draws_per_s: float
    deltas_per_s: float
    live_s: float
    seen: int  # charts in view


@dataclass
class Traffic:
    """What the DevTools Network domain saw: HTTP responses by request, WebSocket frames."""

    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    ws_bytes: int = 0

    def listen(self, cdp: Any) -> None:
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.requestServedFromCache", self._cached)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        self.responses.setdefault(event["requestId"], {}).update(
            type=event.get("type"),
            url=response["url"],
            status=response["status"],
            cached=bool(response.get("fromDiskCache") or response.get("fromPrefetchCache")),
        )

    def _cached(self, event: dict[str, Any]) -> None:
        self.responses.setdefault(event["requestId"], {})["cached"] = True

    def _finished(self, event: dict[str, Any]) -> None:
        self.responses.setdefault(event["requestId"], {})["bytes"] = int(event["encodedDataLength"])

    def _frame(self, event: dict[str, Any]) -> None:
        self.ws_bytes += len(event["response"]["payloadData"])

    def http_bytes(self) -> int:
        return sum(r.get("bytes", 0) for r in self.responses.values() if not r.get("cached"))

    def scripts_fetched(self) -> int:
        """Scripts whose bytes came over the network (not from the browser's cache)."""
        return sum(
            1
            for r in self.responses.values()
            if r.get("type") == "Script" and not r.get("cached") and r.get("bytes", 0) > 0
        )


class Browser:
    """Chromium through Playwright, closed on exit."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._driver = sync_playwright().start()
        self.browser = self._driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def close(self) -> None:
        self.browser.close()
        self._driver.stop()


def metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def wait_drawn(page: Any, charts: int) -> tuple[float | None, float | None]:
    """Seconds from navigation to the first chart drawn and to every chart in view drawn."""
    deadline = time.monotonic() + DRAW_TIMEOUT
    while time.monotonic() < deadline:
        state = page.evaluate(DRAWN)
        if state["charts"] == charts and state["seen"] and state["drawn"] == state["seen"]:
            marks = sorted(state["marks"])
            return marks[0] / 1000, marks[state["seen"] - 1] / 1000
        time.sleep(0.05)
    marks = sorted(page.evaluate(DRAWN)["marks"])
    return (marks[0] / 1000 if marks else None), None


def run_scenario(
    browser: Browser, url: str, scenario: Scenario, seconds: float, profile: Path | None = None
) -> Result:
    context = browser.browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.add_init_script(OBSERVE_LONG_TASKS)
        if scenario.repeat:  # the first visit fills the cache; it is not measured
            page.goto(url)
            wait_drawn(page, scenario.charts)
            page.goto("about:blank")
        return measure(page, context.new_cdp_session(page), url, scenario, seconds, profile)
    finally:
        context.close()


def measure(
    page: Any, cdp: Any, url: str, scenario: Scenario, seconds: float, profile: Path | None
) -> Result:
    cdp.send("Performance.enable")
    cdp.send("Network.enable")
    if scenario.link:
        cdp.send("Network.emulateNetworkConditions", LINK)
    traffic = Traffic()
    traffic.listen(cdp)
    page.goto(url, wait_until="commit")
    first, every = wait_drawn(page, scenario.charts)
    http, scripts, ws_to_drawn = traffic.http_bytes(), traffic.scripts_fetched(), traffic.ws_bytes
    if scenario.link:  # live updates are measured on loopback either way
        cdp.send(
            "Network.emulateNetworkConditions",
            {**LINK, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
    time.sleep(1.0)  # let the first draws and their catch-up deltas settle
    if profile is not None:
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 200})
        cdp.send("Profiler.start")
    live = page.evaluate("() => performance.now()")
    before, stats_before, ws_before = metrics(cdp), page_stats(page), traffic.ws_bytes
    time.sleep(seconds)
    after, stats_after = metrics(cdp), page_stats(page)
    ws_live = traffic.ws_bytes - ws_before
    if profile is not None:
        saved = cdp.send("Profiler.stop")["profile"]
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(json.dumps(saved))
    tasks = [d for start, d in page.evaluate("() => window.__longTasks") if start >= live]
    wall = after["Timestamp"] - before["Timestamp"]
    seen = page.evaluate(DRAWN)["seen"]
    return Result(
        scenario=scenario,
        drawn_first_s=first,
        drawn_all_s=every,
        busy=(after["TaskDuration"] - before["TaskDuration"]) / wall,
        longest_task_ms=max(tasks, default=0.0),
        long_tasks=sum(1 for d in tasks if d > LONG_TASK_MS),
        heap_mb=after["JSHeapUsedSize"] / 1e6,
        http_bytes=http,
        scripts_fetched=scripts,
        ws_bytes_to_drawn=ws_to_drawn,
        ws_bytes_per_s=ws_live / wall,
        draws_per_s=(stats_after["draws"] - stats_before["draws"]) / wall,
        deltas_per_s=(stats_after["deltasApplied"] - stats_before["deltasApplied"]) / wall,
        live_s=wall,
        seen=seen,
    )


def page_stats(page: Any) -> dict[str, int]:
    return dict(page.evaluate("() => ({...window.rtplot.stats})"))


@contextmanager
def pipeline(window: int = WINDOW_MINUTES) -> Iterator[str]:
    """rtplot up's services on a private redis-server, every symbol's window (7 days)
    stored; the gateway's URL."""
    with Stack(
        symbols=",".join(SYMBOLS),
        source="synthetic",
        fetch_interval=1,
        window_minutes=window,
        log_level="WARNING",
    ) as stack:
        for service in ("worker", "beat", "renderer"):
            stack.launch(service)
        gateway = stack.launch("gateway")
        stack.wait_healthy()
        stack.wait_snapshots(SYMBOLS, timeout=180)
        yield gateway.url
        stack.check_alive()


def page_url(base: str, scenario: Scenario) -> str:
    symbols = ",".join(SYMBOLS[: scenario.charts])
    view = KINDS[scenario.kind]
    return f"{base}/?symbols={symbols}" + (f"&view={view}" if view else "")


def plan(quick: bool) -> list[Scenario]:
    kinds = list(KINDS)[:2] if quick else list(KINDS)
    counts = [1, 4] if quick else COUNTS
    scenarios = [Scenario(kind, n) for kind in kinds for n in counts]
    article = next(iter(KINDS))
    scenarios += [
        Scenario(article, 4, link=True),
        Scenario(article, 4, repeat=True),
        Scenario(article, 4, link=True, repeat=True),
    ]
    return scenarios


def say(message: str) -> None:
    print(f"[bench.page] {message}", flush=True)


def visits(scenario: Scenario) -> list[Scenario]:
    """A scenario's first and repeat visit, on loopback and on the emulated link."""
    kind, n = scenario.kind, scenario.charts
    return [Scenario(kind, n, link, repeat) for repeat in (False, True) for link in (False, True)]


def run(
    scenarios: list[Scenario],
    seconds: float,
    profile: Path | None = None,
    window: int = WINDOW_MINUTES,
) -> list[Result]:
    results = []
    with pipeline(window) as base:
        browser = Browser()
        try:
            for i, scenario in enumerate(scenarios):
                say(scenario.name)
                where = None
                if profile is not None:
                    where = (
                        profile
                        if len(scenarios) == 1
                        else profile.with_suffix(f".{i}{profile.suffix}")
                    )
                result = run_scenario(browser, page_url(base, scenario), scenario, seconds, where)
                say(row(result))
                if where is not None:
                    say(f"profile: {where}\n{profile_summary(where)}")
                results.append(result)
        finally:
            browser.close()
    return results


# -- the report -------------------------------------------------------------------------


def seconds_text(value: float | None) -> str:
    return "not drawn" if value is None else f"{value:.2f} s"


def row(r: Result) -> str:
    s = r.scenario
    visit = ("repeat" if s.repeat else "first") + (", 10 Mbit/s" if s.link else "")
    return (
        f"| {s.kind} | {s.charts} ({r.seen} in view) | {visit} "
        f"| {seconds_text(r.drawn_first_s)} | {seconds_text(r.drawn_all_s)} "
        f"| {100 * r.busy:.1f} % | {r.longest_task_ms:.0f} ms ({r.long_tasks}) "
        f"| {r.heap_mb:.0f} MB | {r.http_bytes / 1e6:.2f} MB ({r.scripts_fetched}) "
        f"| {r.ws_bytes_to_drawn / 1e6:.2f} MB | {r.ws_bytes_per_s / 1e3:.1f} kB/s "
        f"| {r.draws_per_s:.1f} |"
    )


HEAD = [
    "| view | charts | visit | first drawn | all in view drawn | busy | longest task (> 50 ms) "
    "| JS heap | HTTP (scripts fetched) | WebSocket to drawn | WebSocket live | draws/s |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def table(results: list[Result]) -> str:
    return "\n".join([*HEAD, *(row(r) for r in results)]) + "\n"


def find(results: list[Result], kind: str, charts: int, **flags: bool) -> Result | None:
    for r in results:
        s = r.scenario
        if (s.kind, s.charts, s.link, s.repeat) == (
            kind,
            charts,
            flags.get("link", False),
            flags.get("repeat", False),
        ):
            return r
    return None


def targets(results: list[Result]) -> list[tuple[str, str, bool]]:
    """Issue 18's targets against this run, for those scenarios the run had."""
    article, candles = next(iter(KINDS)), list(KINDS)[1]
    rows: list[tuple[str, str, bool]] = []
    if r := find(results, article, 16):
        rows.append(
            (
                "16 live charts, the article's view, main thread at most 10 % busy",
                f"{100 * r.busy:.1f} %",
                r.busy <= 0.10,
            )
        )
    if r := find(results, candles, 4):
        drawn = r.drawn_all_s
        rows.append(
            (
                "4 candle charts 5m with volume, all drawn within 1.5 s (first visit, loopback)",
                seconds_text(drawn),
                drawn is not None and drawn <= 1.5,
            )
        )
        rows.append(
            ("4 live candle charts 5m, at most 10 % busy", f"{100 * r.busy:.1f} %", r.busy <= 0.10)
        )
        rows.append(
            (
                "4 live candle charts 5m, no long task over 50 ms while live",
                f"longest {r.longest_task_ms:.0f} ms",
                r.long_tasks == 0,
            )
        )
    if r := find(results, article, 4, link=True):
        drawn = r.drawn_all_s
        rows.append(
            (
                "first visit, 4 charts, 10 Mbit/s and 40 ms: drawn within 2.5 s",
                seconds_text(drawn),
                drawn is not None and drawn <= 2.5,
            )
        )
        rows.append(
            (
                "first visit, 4 charts, 10 Mbit/s and 40 ms: at most 1.5 MB over HTTP",
                f"{r.http_bytes / 1e6:.2f} MB",
                r.http_bytes <= 1_500_000,
            )
        )
    if r := find(results, article, 4, repeat=True):
        drawn = r.drawn_all_s
        rows.append(
            (
                "repeat visit: no script downloaded again",
                f"{r.scripts_fetched} fetched",
                r.scripts_fetched == 0,
            )
        )
        rows.append(
            (
                "repeat visit: drawn within 0.8 s on loopback",
                seconds_text(drawn),
                drawn is not None and drawn <= 0.8,
            )
        )
    return rows


BEFORE = """Before (issue 18, measured by hand as a new user would, `rtplot up`, 7 days stored):

| what | measured |
| --- | --- |
| 1 chart, the article's view (10,080 points) | first drawn 1.5 s after navigation; main thread 3.4 % busy while live |
| 4 charts | first drawn 2.0 s; 11 % busy |
| 16 charts | first drawn 3.8 s; 39 % busy |
| 1 chart, candles 5m with volume (2,016 candles) | first drawn 13 s; main thread 100 % busy; long tasks up to 1.3 s |
| 4 charts, candles 5m + SMA 20 | 45 s to draw; 100 % busy; every card "reconnecting" |
| candles 1m, OHLC 1m | no chart drawn within 60 s |
| first visit over a 10 Mbit/s, 40 ms link, 4 charts | 6.9 s; 4.9 MB over HTTP |
"""  # noqa: E501


TITLE = "## The page in a browser"


def replace_section(document: str, section: str, title: str | None = None) -> str:
    """The document with its section (``title``: the page's by default) replaced, or
    added before the change log."""
    title = TITLE if title is None else title
    if title in document:
        start = document.index(title)
        end = document.find("\n## ", start + len(title))
        return document[:start] + section + (document[end + 1 :] if end >= 0 else "")
    anchor = "## Changes, before and after"
    if anchor in document:
        at = document.index(anchor)
        return document[:at] + section + "\n" + document[at:]
    return document + "\n" + section


def markdown(results: list[Result], seconds: float, command: str, elapsed: float = 0) -> str:
    took = f" ({elapsed:.0f} s)" if elapsed else ""
    lines = [
        TITLE,
        "",
        f"`.venv/bin/{command}`{took}: headless Chromium (Debian's), Playwright and the DevTools "
        "protocol, a 1,400 x 900 viewport, `rtplot up`'s pipeline with 7 days of "
        f"1-minute bars stored per symbol and one update per chart per second, {seconds:g} s "
        "live per scenario. *busy* is the main thread's `TaskDuration` over the live "
        "window; *HTTP* is what came over the network (headers included), the "
        "WebSocket not counted; a chart out of view is not drawn (*in view*).",
        "",
    ]
    goals = targets(results)
    if goals:
        lines += ["| target (issue 18) | this run | met |", "| --- | ---: | :---: |"]
        lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in goals]
        lines.append("")
    lines += [table(results), BEFORE, sent_section()]
    return "\n".join(lines)


def bundle_rows() -> list[tuple[str, int, int]]:
    """(file, bytes, gzipped) of the two Plotly.js bundles the gateway serves."""
    from gateway import assets

    found = assets.assets()
    return [
        (name, len(found[name].body.plain), len(found[name].body.gzipped))
        for name in ("plotly.min.js", "plotly-finance.min.js")
        if name in found
    ]


def typed(value: Any) -> Any:
    """A figure with its numeric arrays as plotly.js typed arrays (``{dtype, bdata}``):
    float64, or int32 where the values fit."""
    import base64

    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype.kind in "fi":
        small = value.dtype.kind == "i" and (len(value) == 0 or int(np.abs(value).max()) < 2**31)
        array = value.astype(np.int32 if small else np.float64)
        return {"dtype": "i4" if small else "f8", "bdata": base64.b64encode(array).decode()}
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return value


def figure_rows() -> list[tuple[str, int, int]]:
    """(view, bytes as JSON numbers, bytes with typed arrays) of a 7-day figure."""
    from bench.render import bars_for
    from common.settings import Settings
    from common.views import View
    from renderer.figure import encode
    from renderer.service import ViewChart
    from renderer.window import Window, rows_of

    bars = bars_for(WINDOW_MINUTES)
    window = Window("bench", 1, rows_of([b.as_list() for b in bars]))
    rows = []
    for name, words in KINDS.items():
        key = ".".join(words.split(",")) if words else ""
        view = View.from_key(key + (".vol" if key else "")) if key else View()
        # Bounded as the renderer bounds it (RTPLOT_VIEW_BARS), over the window alone.
        chart = ViewChart("AAPL", window, view, None, Settings.view_bars)
        figure = chart.figure(chart.style())
        rows.append((name, len(encode(figure)), len(encode(typed(figure)))))
    return rows


def sent_section() -> str:
    lines = [
        "What a first visit is sent. Plotly.js: the plotly package's full bundle, and the "
        'partial "finance" bundle the page loads (every trace type the renderer '
        "emits; `tests/test_page_live.py` checks it):",
        "",
        "| file | bytes | gzipped |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| `{name}` | {raw:,} | {zipped:,} |" for name, raw, zipped in bundle_rows()]
    lines += [
        "",
        "A chart's first figure, 7 days stored, as the renderer sends it (JSON numbers) "
        'and with its arrays as plotly.js typed arrays (`{"dtype", "bdata"}`, '
        "base64): prices carry cents, so a float64 in base64 (10.7 characters) is longer "
        "than the number it holds; the page keeps JSON numbers.",
        "",
        "| view | JSON numbers | typed arrays |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {plain:,} B | {arrays:,} B |" for name, plain, arrays in figure_rows()]
    return "\n".join(lines) + "\n"


def profile_summary(path: Path, top: int = 15) -> str:
    """The functions with the most self time in a DevTools CPU profile, as shares of the
    main thread's busy samples (idle left out), with their total (callees included)."""
    profile = json.loads(path.read_text())
    nodes = {node["id"]: node for node in profile["nodes"]}
    parents = {child: node["id"] for node in profile["nodes"] for child in node.get("children", [])}

    def name(node: int) -> str:
        frame = nodes[node]["callFrame"]
        where = frame["url"].rsplit("/", 1)[-1] or "(native)"
        line, column = frame["lineNumber"] + 1, frame["columnNumber"] + 1
        return f"{frame['functionName'] or '(anonymous)'} {where}:{line}:{column}"

    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for sample, gap in zip(profile.get("samples", []), profile.get("timeDeltas", []), strict=False):
        if nodes[sample]["callFrame"]["functionName"] == "(idle)":
            continue
        own[name(sample)] += gap
        node: int | None = sample
        on_stack = set()
        while node is not None:
            on_stack.add(name(node))
            node = parents.get(node)
        total.update(dict.fromkeys(on_stack, gap))
    busy = sum(own.values()) or 1
    lines = ["| self | total | function |", "| ---: | ---: | --- |"]
    lines += [
        f"| {100 * us / busy:.1f} % | {100 * total[key] / busy:.1f} % | `{key}` |"
        for key, us in own.most_common(top)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, help="live seconds per scenario (20; quick 8)")
    parser.add_argument("--only", help="one view's words (candles,5m; '' the article's)")
    parser.add_argument("--charts", type=int, nargs="*", help="chart counts (1 4 16)")
    parser.add_argument("--profile", type=Path, help="save a DevTools CPU profile here")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    parser.add_argument("--write", type=Path, help="put the section into this document")
    parser.add_argument("--visits", action="store_true", help="also repeat visits, and the link")
    parser.add_argument("--window", type=int, default=WINDOW_MINUTES, help="minutes stored")
    args = parser.parse_args()
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    scenarios = plan(args.quick)
    if args.only is not None or args.charts:
        kinds = [k for k, words in KINDS.items() if args.only is None or words == args.only]
        if not kinds:
            kinds = [args.only]
            KINDS[args.only] = args.only
        scenarios = [Scenario(k, n) for k in kinds for n in (args.charts or COUNTS)]
        if args.visits:
            scenarios = [v for s in scenarios for v in visits(s)]
    started = time.monotonic()
    results = run(scenarios, seconds, args.profile, args.window)
    command = "python -m bench.page" + (" --quick" if args.quick else "")
    section = markdown(results, seconds, command, time.monotonic() - started)
    print(section)
    if args.write:
        args.write.write_text(replace_section(args.write.read_text(), section))
        say(f"wrote its section into {args.write}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
