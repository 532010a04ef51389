"""The renderer loop: read change notices as a consumer group, render, store, publish.

Every change notice is read by exactly one renderer of the group and acknowledged only
after its symbol is rendered, so a renderer killed mid-render leaves the notice pending
and another renderer (or this one, restarted) claims it once it has idled for
``CLAIM_IDLE_MS``. A burst of notices for one symbol becomes one render of its latest
state, whatever the number of viewers.

A render of a symbol renders its default view (the article's chart) and each other view
that some gateway subscribes to now (common.views: gateways list the views they were
asked for, renderer.watching says which are watched); each is built once from the one
window, whatever the number of its viewers, and stored and published on its own.
"""

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from common.contract import changelog
from common.contract.history import read_history
from common.contract.keys import RENDER_GROUP, Keys
from common.contract.members import ChangeNotice
from common.contract.packets import event_packet, figure_payload
from common.contract.snapshots import Catchup, Outcome, Read, Stored, Whole, WriteRender
from common.markets import DAY, Market, market_for
from common.messages import BARS, FIGURE
from common.resolutions import Columns, Resolution, history_of
from common.series import MAX_WARMUP, HistoryBars, on_timeframe
from common.views import DEFAULT, TIMEFRAMES, View
from renderer import metrics
from renderer.figure import encode
from renderer.publish import Publisher
from renderer.store import RenderStore
from renderer.views import (
    Frame,
    frame_of,
    view_delta,
    view_figure,
    view_style,
)
from renderer.watching import Audience
from renderer.window import Window, rows_of

log = logging.getLogger("rtplot.renderer")

CLAIM_IDLE_MS = 10_000  # a notice pending this long belongs to a dead renderer
CLAIM_EVERY = 5.0  # seconds between looks for such notices
BATCH = 500  # notices read per round; coalesced by symbol
HEARTBEAT_TTL = 30  # seconds
RETRY_FIRST, RETRY_MAX = 0.2, 1.0  # seconds between tries while Redis is away
MAX_WINDOWS = 1_000  # symbols' windows kept between renders (7 days: 480 kB each)
MAX_HISTORIES = 2_000  # (symbol, resolution) histories kept between renders
# A catch-up delta longer than this is no cheaper for a subscriber than the whole figure.
CATCHUP_MAX_BARS = 120


@dataclass
class RoundReport:
    notices: int = 0
    rendered: dict[str, int] = field(default_factory=dict)  # symbol -> seq published


class ViewChart:
    """One view of a symbol at one version (renderer.views), the default view (the
    article's chart) among them: the last ``limit`` bars of its series, the store's
    ``history`` (at version ``history_version``) before the window's; its look, its
    figure, its deltas."""

    def __init__(
        self,
        symbol: str,
        window: Window,
        view: View = DEFAULT,
        history: HistoryBars | None = None,
        limit: int | None = None,
        history_version: int = 0,
        loading: bool = False,
    ) -> None:
        self.symbol, self.window = symbol, window
        self.view, self.key = view, view.key
        self.frame: Frame = frame_of(window, view, history, limit, history_version, loading)

    def style(self) -> dict[str, Any]:
        return view_style(self.frame)

    def figure(self, style: dict[str, Any]) -> dict[str, Any]:
        return view_figure(self.symbol, self.frame, style)

    def delta(
        self, base_seq: int, base_style: dict[str, Any] | None, style: dict[str, Any], since: int
    ) -> dict[str, Any]:
        return view_delta(self.symbol, self.frame, base_seq, base_style, style, since)

    def size_since(self, minute: int) -> int:
        """How many bars a delta from ``minute`` (UTC) carries."""
        return len(self.frame) - max(self.frame.bar_at(minute), self.frame.shown)

    def deltas_apply(self) -> bool:
        """Whether a page can place a delta's bars by their x alone (a market's clock
        that went back an hour could give two bars one x); if not, it is sent whole
        figures."""
        return self.frame.monotonic()


@dataclass
class HeldHistory:
    """A symbol's history at one resolution, as read at ``version`` in ``epoch``, and on
    each timeframe drawn from it so far (15m and 5m from the 5m history)."""

    epoch: str
    version: int
    bars: Columns
    timeframes: dict[str, HistoryBars] = field(default_factory=dict)

    def on(self, view: View, market: Market) -> HistoryBars:
        made = self.timeframes.get(view.timeframe)
        if made is None:
            made = self.timeframes[view.timeframe] = on_timeframe(self.bars, view, market)
        return made


@dataclass
class Render:
    """One render of a view: the delta and catch-up always, the whole figure only when
    asked."""

    symbol: str
    chart: ViewChart
    window: Window
    style: dict[str, Any]
    now: float
    delta_json: bytes | None = None  # None: nothing to be a delta from
    resume_length: int = 0  # renders each view's delta log keeps
    catchup: Catchup | None = None  # None: store the whole figure
    payload_json: bytes | None = None
    figure_json: bytes | None = None

    def whole(self) -> tuple[bytes, bytes]:
        """The ``figure`` event payload and the figure, encoded once."""
        if self.payload_json is None or self.figure_json is None:
            self.figure_json = encode(self.chart.figure(self.style))
            w = self.window
            self.payload_json = figure_payload(
                self.symbol, self.chart.key, w.version, w.epoch, self.figure_json
            )
        return self.payload_json, self.figure_json

    def write(self) -> WriteRender:
        """Its store and its delta, as the contract's write takes them."""
        if self.delta_json is not None:
            packet = event_packet(BARS, self.delta_json)
        else:  # a first render reaches the page's room as a whole figure
            packet = event_packet(FIGURE, self.whole()[0])
        whole = None if self.catchup is not None else Whole(self.whole()[0], self.style, self.now)
        w = self.window
        return WriteRender(
            self.symbol,
            self.chart.key,
            w.epoch,
            w.version,
            self.style,
            packet,
            self.catchup,
            whole,
            self.delta_json,
            self.resume_length,
        )


@dataclass(frozen=True)
class OtherView:
    """A view other than the default one, due a render of ``read``."""

    symbol: str
    key: str
    read: Read
    stored: Stored
    gateways: int  # subscribed to its rooms: the more, the sooner it is rendered


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Renderer:
    def __init__(
        self,
        client: "redis.Redis",
        keys: Keys,
        publisher: Publisher,
        name: str | None = None,
        snapshot_every: float = 5.0,
        watch_ttl: float = 600.0,
        resume_length: int = 300,
        view_bars: int | None = 1_500,
        history_kept: bool = False,
    ) -> None:
        self.client = client
        self.keys = keys
        self.publisher = publisher
        self.name = name or consumer_name()
        self.snapshot_every = snapshot_every  # seconds between whole figures stored
        self.watch_ttl = watch_ttl  # seconds a view stays listed after its last stamp
        self.resume_length = resume_length  # renders of a view kept for resuming clients
        self.store = RenderStore(client, keys)
        self.view_bars = view_bars  # bars a chart holds (its newest); None: all
        self.history_kept = history_kept  # the fetcher fills history (RTPLOT_HISTORY_DAYS)
        self.windows: OrderedDict[str, Window] = OrderedDict()  # least recently used first
        # (symbol, resolution) -> its history as read, least recently used first
        self.histories: OrderedDict[tuple[str, Resolution], HeldHistory] = OrderedDict()
        self.audience = Audience()
        self._last_claim = 0.0
        self.last_step = time.monotonic()  # for /healthz: the loop is alive

    def ensure_group(self) -> None:
        try:
            # From the start of the stream: notices written before any renderer ran
            # (or while the group was lost with a Redis without persistence) still count.
            self.client.xgroup_create(self.keys.changes, RENDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def step(self, block_ms: int = 1000) -> RoundReport:
        """One round: claim abandoned notices now and then, read new ones, render."""
        report = RoundReport()
        now = time.monotonic()
        if now - self._last_claim >= CLAIM_EVERY:
            self._last_claim = now
            claimed = self._claim_abandoned()
            if claimed:
                self._render_notices(claimed, report, claimed=True)
        response: Any = self.client.xreadgroup(
            RENDER_GROUP, self.name, {self.keys.changes: ">"}, count=BATCH, block=block_ms
        )
        for _stream, entries in response or []:
            self._render_notices(entries, report, claimed=False)
        self.client.set(self.keys.renderer_heartbeat(self.name), int(time.time()), ex=HEARTBEAT_TTL)
        self.last_step = time.monotonic()
        return report

    def _claim_abandoned(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        result = self.client.xautoclaim(
            self.keys.changes, RENDER_GROUP, self.name, CLAIM_IDLE_MS, "0-0", count=BATCH
        )
        entries: list[tuple[bytes, dict[bytes, bytes]]] = result[1]
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def _render_notices(self, entries: list[Any], report: RoundReport, claimed: bool) -> None:
        report.notices += len(entries)
        metrics.NOTICES.labels("claimed" if claimed else "new").inc(len(entries))
        symbols = dict.fromkeys(ChangeNotice.read(fields).symbol for _id, fields in entries)
        # Every symbol's default view first, then the other views of the whole batch,
        # the most watched first: a crowd of rare views cannot hold up the popular ones.
        others: list[OtherView] = []
        for symbol in symbols:
            with self._contained(symbol, DEFAULT.key, drop=True):
                seq = self.render(symbol, others)
                if seq is not None:
                    report.rendered[symbol] = seq
        for other in sorted(others, key=lambda o: -o.gateways):
            self._render_other(other)
        ids = [entry_id for entry_id, _fields in entries]
        if ids:
            self.client.xack(self.keys.changes, RENDER_GROUP, *ids)

    def render(self, symbol: str, later: "list[OtherView] | None" = None) -> int | None:
        """Render the symbol's current bars and publish them, in every view that needs it:
        the default view unless a render as new is stored already, and each watched view
        likewise (added to ``later`` instead, when given, for the caller to render). The
        seq published in the default view, or None."""
        started = time.perf_counter()
        read = self._read(symbol)
        if read is None:
            return None  # gone, or not fetched yet
        published = None
        if read.stored.head != read.version:
            published = self._render_view(symbol, DEFAULT, read, read.stored, started)
        views = read.views or {}
        for key, stored in self._view_states(symbol, read, self.audience.views(read)).items():
            if stored.head != read.version:
                other = OtherView(symbol, key, read, stored, views.get(key, 0))
                if later is None:
                    self._render_other(other)
                else:
                    later.append(other)
        for key in read.stale_views:
            self.store.forget_view(symbol, key, time.time() - self.watch_ttl)
        return published

    def _render_other(self, other: "OtherView") -> None:
        try:
            view = View.from_key(other.key)
        except ValueError:
            log.warning("not a view key", extra={"symbol": other.symbol, "view": other.key})
            return
        self._render_view(other.symbol, view, other.read, other.stored, time.perf_counter())

    def _view_states(self, symbol: str, read: Read, keys: list[str]) -> dict[str, Stored]:
        return self.store.read_views(symbol, read.epoch, keys) if keys else {}

    @contextmanager
    def _contained(self, symbol: str, view: str, drop: bool = False) -> Iterator[None]:
        """A render that fails on what it read (a bug, or bars it cannot draw) is logged
        and counted, and the others go on: one symbol's view must not stop every chart,
        nor return as a claimed notice to stop the renderer once more. Redis's errors
        go on to ``run``, which waits for Redis and renders the notices then. With
        ``drop``, the window held is dropped too (the read may have left it half
        updated), so that the symbol's next render reads it whole."""
        try:
            yield
        except redis.RedisError:
            raise
        except Exception:
            metrics.RENDER_ERRORS.inc()
            log.exception("render failed", extra={"symbol": symbol, "view": view or "default"})
            if drop:
                self.windows.pop(symbol, None)

    def _render_view(
        self, symbol: str, view: View, read: Read, stored: Stored, started: float
    ) -> int | None:
        """Build, store and publish one view; the seq published, or None (also when it
        failed: ``_contained``)."""
        with self._contained(symbol, view.key):
            return self._publish_view(symbol, view, read, stored, started)
        return None

    def _publish_view(
        self, symbol: str, view: View, read: Read, stored: Stored, started: float
    ) -> int | None:
        for attempt in range(2):
            window = self.windows[symbol]
            chart = self._chart(symbol, window, view, read)
            render = self._build(chart, read, stored)
            written = self.store.write(render.write())
            if written.outcome is not Outcome.NEEDS_FIGURE or attempt:
                break
            # The snapshot was reset between the read and the write: read it all again.
            fresh = self._read(symbol)
            if fresh is None:
                return None
            read = fresh
            stored = read.stored
            if view.key:
                stored = self._view_states(symbol, read, [view.key])[view.key]
            if stored.head == read.version:
                return None
        if written.outcome is not Outcome.STORED:
            return None
        if rooms := self.audience.figure_rooms(symbol, view.key, written):
            payload_json, figure_json = render.whole()
            self.publisher.publish_figures(payload_json, figure_json, rooms)
        self._record(chart, render, read, started)
        return read.version

    def _chart(self, symbol: str, window: Window, view: View, read: Read) -> ViewChart:
        if not view.key:
            return ViewChart(symbol, window, view, limit=self.view_bars)
        resolution = history_of(view.timeframe)
        held = None if resolution is None else self._history(symbol, window, resolution, read)
        loading = self.history_kept and resolution is not None
        loading = loading and (held is None or not len(held.bars.t))
        bars = None if held is None else held.on(view, window.market)
        return ViewChart(symbol, window, view, bars, self.view_bars, read.history, loading)

    def _history(
        self, symbol: str, window: Window, resolution: Resolution, read: Read
    ) -> HeldHistory | None:
        """The symbol's stored history at ``resolution``, read once per version of it,
        and of it only what a bounded chart can draw: its last bars, as many as the
        longest chart made of them holds with its warm-up, and those beside the window
        (two years of 1h bars are 840 kB of floats; a chart of 1,500 needs 70 kB)."""
        if not read.history:
            return None
        key = (symbol, resolution)
        held = self.histories.get(key)
        if held is None or (held.epoch, held.version) != (read.epoch, read.history):
            bars = read_history(self.client, self.keys, symbol, resolution)
            if self.view_bars is not None:
                coarsest = max(TIMEFRAMES[t] for t in TIMEFRAMES if history_of(t) is resolution)
                per = coarsest // resolution.seconds  # 15m bars of 5m history: 3 each
                charted = (self.view_bars + MAX_WARMUP + DAY // coarsest + 2) * per
                beside = 2 * len(window) * 60 // resolution.seconds + 2
                bars = bars.take(slice(-(charted + beside), None))
            held = self.histories[key] = HeldHistory(read.epoch, read.history, bars)
            metrics.HISTORY_READS.inc()
        self.histories.move_to_end(key)
        while len(self.histories) > MAX_HISTORIES:
            self.histories.popitem(last=False)
        return held

    def _read(self, symbol: str) -> Read | None:
        """The store's state, the held window brought up to it: from the bars changed
        since the window's version where the changelog proves that is all, else from
        every bar."""
        held = self.windows.get(symbol)
        since = time.time() - self.watch_ttl
        read = self.store.read(symbol, *((held.epoch, held.version) if held else ("", 0)), since)
        if read.version == 0 or read.count == 0:
            self.windows.pop(symbol, None)
            return None
        # A source that says nothing of its market: its suffix's clock, no hours hidden.
        market = read.market or market_for(symbol).always_open()
        if held is not None and read.changed_from is not None and held.market == market:
            held.apply(read.version, read.start, read.changed_from, rows_of(read.rows))
            if len(held) == read.count:
                self.windows.move_to_end(symbol)
                metrics.READS.labels("changed").inc()
                return read
            metrics.READS.labels("out_of_step").inc()  # a bug, or a store changed by hand
            log.warning("window out of step with the store", extra={"symbol": symbol})
            read = self.store.read(symbol, "", 0, since)
        metrics.READS.labels("all").inc()
        self.windows[symbol] = Window(read.epoch, read.version, rows_of(read.rows), market)
        self.windows.move_to_end(symbol)
        while len(self.windows) > MAX_WINDOWS:
            self.windows.popitem(last=False)
        return read

    def _build(self, chart: ViewChart, read: Read, stored: Stored) -> Render:
        """The live delta from the previous render (``head``), when the changelog covers
        the versions since; the catch-up from the stored figure, when it is not due to
        be stored again and the catch-up is short. What is missing is sent or stored
        whole."""
        window, now = chart.window, time.time()
        style = chart.style()
        render = Render(chart.symbol, chart, window, style, now, resume_length=self.resume_length)
        if stored.head is None or not chart.deltas_apply():
            return render  # a first render in this epoch: everything whole
        since = changelog.first_changed(read.entries, stored.head, window.version)
        if since is None:
            return render  # too many versions since the last render to tell what changed
        delta = chart.delta(stored.head, stored.head_style, style, since)
        render.delta_json = orjson.dumps(delta)
        # Every render since the stored figure moved `catchup_from` to the first minute
        # it changed: the catch-up needs no changelog, however many versions ago that was.
        due = (
            stored.stored_at is None
            or now - stored.stored_at >= self.snapshot_every
            or self.audience.takes_figures(chart.symbol, chart.key)
            # the history changed since the stored figure: a catch-up would be all of it
            or (stored.style or {}).get("history") != style.get("history")
        )
        catchup_from = min(stored.catchup_from, since)
        if (
            not due
            and stored.seq is not None
            and chart.size_since(catchup_from) <= CATCHUP_MAX_BARS
        ):
            catchup = chart.delta(stored.seq, stored.style, style, catchup_from)
            render.catchup = Catchup(stored.seq, catchup_from, orjson.dumps(catchup))
        return render

    def _record(self, chart: ViewChart, render: Render, read: Read, started: float) -> None:
        symbol = chart.symbol
        took = time.perf_counter() - started
        metrics.RENDER_SECONDS.observe(took)
        metrics.RENDERS.inc()
        if chart.key:
            metrics.VIEW_RENDERS.inc()
        if render.delta_json is not None:
            metrics.PAYLOAD_BYTES.labels("delta").observe(len(render.delta_json))
        if render.payload_json is not None:
            metrics.PAYLOAD_BYTES.labels("figure").observe(len(render.payload_json))
        if read.as_of is not None:
            metrics.LAG.observe(max(time.time() - read.as_of, 0.0))
        log.debug(
            "rendered",
            extra={
                "symbol": symbol,
                "view": chart.key,
                "seq": read.version,
                "bars": len(render.window),
                "ms": round(took * 1000, 2),
            },
        )

    def run(self, stop: threading.Event) -> None:
        # Redis away: try again soon, and never more than a second apart, so renders
        # resume within a second of it answering, however long it was gone.
        backoff = RETRY_FIRST
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step()
                    backoff = RETRY_FIRST
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning(
                    "redis unavailable, retrying", extra={"error": str(exc), "retry_in": backoff}
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group lost (Redis restarted empty?), recreating")
            stop.wait(backoff)
            backoff = min(backoff * 2, RETRY_MAX)
