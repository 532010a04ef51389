// rtplot's page: live charts over Socket.IO, kept current with small `bars` deltas.
//
// Each chart subscribes in delta mode: the gateway sends the stored figure once (the
// snapshot, maybe a few seconds old, with a `bars` event catching it up), then `bars`
// events holding only what changed. A delta applies only on top of the seq it was made
// from (`base_seq`) in the same epoch; on any gap the page asks for a fresh snapshot
// instead of guessing. After a reconnect it subscribes with what it holds (`since`: its
// seq and epoch), and the gateway sends one `bars` event from there instead of the
// figure when it can ("resumed" in the ack), the figure otherwise; a gateway too old to
// know `since` refuses it, and the page subscribes again without. A new epoch (the store
// was reset and its versions started again) is taken as a fresh snapshot, whatever its
// seq.
//
// Each chart shows one view of its symbol (docs/views.md): a chart type, a timeframe,
// indicators and a volume pane, switched on the card and kept in the address
// (`?symbols=AAPL,TSLA&view=candles,5m`, `&TSLA=ohlc,1h,sma20`) and in local storage.
// Updates carry their view's key; those of a view the chart no longer shows are ignored.
//
// A chart draws only what a person can see, at most once per frame: an update changes
// the chart's data at once, and marks it to be drawn. Drawing waits for an animation
// frame, so updates that arrive together are drawn once; a chart scrolled out of view
// (IntersectionObserver), or every chart of a hidden tab, keeps taking its updates into
// its data without drawing, and draws once when it is seen again. What it draws is
// thinned to the pixels it has (thin.js); its data stays whole.
"use strict";

(() => {
  const config = window.RTPLOT_CONFIG;
  const STALE_MS = Math.max(2 * config.interval * 1000, 2000); // two fetch intervals
  const STORAGE_KEY = "rtplot.charts"; // [{symbol, view: "candles,5m"}]
  const OLD_STORAGE_KEY = "rtplot.symbols"; // before views: a list of symbols
  const CHARTS = ["mountain", "candles", "ohlc"];
  const TIMEFRAMES = ["1m", "5m", "15m", "1h", "1d"];
  const INDICATORS = ["sma20", "sma50", "ema20", "vwap"]; // also the order of their traces
  const DEFAULT_VIEW = Object.freeze({ chart: "mountain", timeframe: "1m", indicators: [],
                                       volume: false });
  const SOURCES = {
    synthetic: "synthetic market · simulated prices, not real",
    yfinance: "Yahoo Finance · delayed quotes",
    csv: "CSV replay · recorded prices",
    plugin: "your own source",
  };
  // On a phone the mode bar would cover the range buttons; pinch-zoom does its work there.
  const PLOT_CONFIG = { responsive: true, displaylogo: false,
                        displayModeBar: matchMedia("(max-width: 600px)").matches ? false : "hover" };
  const UP = "#26a69a"; // a volume bar that closed at or above its open (renderer/views.py)
  const DOWN = "#ef5350";
  // The charts one frame draws, at least one: more would make a long task, and the
  // socket's heartbeat would wait behind it. The rest are drawn in the next frames.
  const FRAME_BUDGET_MS = 20;
  // The share of the main thread live drawing may take, over time, the browser's own
  // rendering of what was drawn included. Past it, charts in
  // view are redrawn less often than their updates come, each in turn, so many charts
  // or a slow device get fewer redraws rather than a page that cannot keep up; their
  // data stays current, and so does each card's price. A chart's first draw, its return
  // into view and the viewer's own zoom are never held back.
  const DRAW_SHARE = 0.08;
  const BUDGET_CAP_MS = 150; // what a quiet spell saves up for a burst of updates
  // With the live stream on (RTPLOT_STREAM), how often the page asks which charts it feeds.
  const STREAMING_EVERY_MS = 10_000;
  // A chart this close to the viewport counts as seen, so it is drawn as it scrolls in.
  const NEAR_VIEWPORT = "100px";
  const MARGIN = { l: 48, r: 16, t: 36, b: 36 }; // the plot's, in pixels

  const charts = new Map(); // symbol -> chart state
  // heads: see applyDelta; draws: Plotly calls; frames: animation frames that drew;
  // held: frames that left a live redraw for later, over the drawing budget.
  const stats = { snapshots: 0, deltasApplied: 0, gaps: 0, heads: 0, draws: 0, frames: 0,
                  held: 0, resumes: 0, pastLoads: 0 };
  let resumeRefused = false; // this connection's gateway does not know `since`
  const $ = (id) => document.getElementById(id);

  // A deployment with tokens is opened as /?token=...; the token rides along with each
  // connection, and leaves the address bar (and so bookmarks, history and screenshots).
  const token = new URLSearchParams(location.search).get("token");
  if (token !== null) {
    const clean = new URL(location.href);
    clean.searchParams.delete("token");
    history.replaceState(null, "", clean);
  }
  const socket = io({
    auth: token ? { token } : {},
    transports: ["websocket", "polling"],
    // Each attempt waits 500 ms, doubling up to 5 s, each +-50 % at random: after a
    // gateway restart, its pages come back spread out, not all in the same instant.
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.5,
  });

  // -- views: what the gateway calls them, and how the address writes them ---------------

  // The view's key, as the gateway and renderer spell it (common/views.py): "" for the
  // default view, else chart.timeframe[.indicator...][.vol].
  function viewKey(view) {
    if (sameView(view, DEFAULT_VIEW)) return "";
    const parts = [view.chart, view.timeframe, ...view.indicators];
    if (view.volume) parts.push("vol");
    return parts.join(".");
  }

  function sameView(a, b) {
    return a.chart === b.chart && a.timeframe === b.timeframe && a.volume === b.volume
      && a.indicators.join() === b.indicators.join();
  }

  function volumeDefault(chart) {
    return chart !== "mountain";
  }

  // "candles,5m,sma20,volume" -> a view; unknown words are ignored.
  function parseView(text) {
    const view = { chart: "mountain", timeframe: "1m", indicators: [], volume: null };
    for (const word of String(text || "").toLowerCase().split(/[,\s]+/)) {
      if (CHARTS.includes(word)) view.chart = word;
      else if (TIMEFRAMES.includes(word)) view.timeframe = word;
      else if (INDICATORS.includes(word) && !view.indicators.includes(word)) {
        view.indicators.push(word);
      } else if (word === "volume") view.volume = true;
      else if (word === "novolume") view.volume = false;
    }
    view.indicators = INDICATORS.filter((name) => view.indicators.includes(name));
    if (view.volume === null) view.volume = volumeDefault(view.chart);
    return view;
  }

  // A view as the address writes it, defaults left out: "" for the default view.
  function viewWords(view) {
    const words = [];
    if (view.chart !== "mountain") words.push(view.chart);
    if (view.timeframe !== "1m") words.push(view.timeframe);
    words.push(...view.indicators);
    if (view.volume !== volumeDefault(view.chart)) words.push(view.volume ? "volume" : "novolume");
    return words.join(",");
  }

  // -- the charts: URL first, then local storage, then the configured symbols -----------

  function initialCharts() {
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get("symbols");
    const shared = params.get("view");
    if (fromUrl !== null) {
      return fromUrl.split(",").map(normalize).filter(Boolean)
        .map((symbol) => ({ symbol, view: parseView(params.get(symbol) ?? shared) }));
    }
    const saved = readStorage();
    if (saved) return saved;
    return config.symbols.slice(0, 4).map((symbol) => ({ symbol, view: parseView(shared) }));
  }

  function readStorage() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY));
      if (Array.isArray(saved)) {
        return saved.filter((c) => c && c.symbol)
          .map((c) => ({ symbol: normalize(c.symbol), view: parseView(c.view) }));
      }
      const old = JSON.parse(localStorage.getItem(OLD_STORAGE_KEY));
      if (Array.isArray(old)) {
        return old.map(normalize).filter(Boolean)
          .map((symbol) => ({ symbol, view: parseView("") }));
      }
    } catch (_) { /* unreadable storage: fall back to the defaults */ }
    return null;
  }

  function normalize(raw) {
    return String(raw).trim().toUpperCase();
  }

  function persist() {
    const list = [...charts.values()];
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(
        list.map((c) => ({ symbol: c.symbol, view: viewWords(c.view) }))));
    } catch (_) { /* private mode: the URL still carries the set */ }
    history.replaceState(null, "", addressOf(list));
    $("empty").hidden = list.length > 0;
    renderSuggestions();
  }

  // ?symbols=AAPL,TSLA, then the view: one for all (&view=candles,5m) when they share
  // one, else one per chart that is not the default (&TSLA=ohlc,1h). Commas stay commas.
  function addressOf(list) {
    const value = (text) => encodeURIComponent(text).replace(/%2C/g, ",");
    const query = [`symbols=${value(list.map((c) => c.symbol).join(","))}`];
    const words = list.map((c) => viewWords(c.view));
    if (list.length && words.every((w) => w === words[0])) {
      if (words[0]) query.push(`view=${value(words[0])}`);
    } else {
      list.forEach((c, i) => {
        if (words[i]) query.push(`${encodeURIComponent(c.symbol)}=${value(words[i])}`);
      });
    }
    return `${location.pathname}?${query.join("&")}${location.hash}`;
  }

  // -- charts ---------------------------------------------------------------------------

  function createChart(symbol, view = parseView("")) {
    const card = $("chart-template").content.firstElementChild.cloneNode(true);
    card.dataset.symbol = symbol;
    card.querySelector(".symbol").textContent = symbol;
    card.querySelector(".remove").addEventListener("click", () => removeChart(symbol));
    $("grid").appendChild(card);
    // data and layout: the figure the chart holds, drawn or not; drawn: Plotly has drawn
    // it at least once; dirty: it changed since it was last drawn; seen: near the viewport;
    // xView: the x range the viewer zoomed to, in the data's units (null: all of it);
    // urgent: the next draw is not a live redraw (see DRAW_SHARE).
    const chart = {
      symbol, card, plot: card.querySelector(".plot"), view, viewKey: viewKey(view),
      seq: null, epoch: null, heldKey: null, lastUpdate: 0, snapshotPending: false,
      data: null, layout: null, drawn: false, dirty: false, seen: false, xView: null,
      urgent: false,
      draws: 0, deltas: 0, // counts, for tests and the curious
      userZoomedY: false, applying: false,
      // The past loaded on demand (see askPast): start is the chart's first bar (ms), held
      // the ranges of x it holds every bar of, floor the x before which nothing is
      // stored; pastAsked the history request on its way; storeLoading: the figure says
      // its history is still being fetched.
      start: -Infinity, held: [], floor: -Infinity, pastAsked: null, storeLoading: false,
      pastRefusedUntil: 0,
    };
    wireViewBar(chart);
    charts.set(symbol, chart);
    markStreamed(chart);
    viewport.observe(chart.plot);
    return chart;
  }

  // The card's switches: chart type, timeframe, indicators, volume pane.
  function wireViewBar(chart) {
    const bar = chart.card.querySelector(".view-bar");
    bar.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      const view = { ...chart.view, indicators: [...chart.view.indicators] };
      const { chart: type, timeframe, indicator } = button.dataset;
      if (type) {
        view.chart = type;
        view.volume = volumeDefault(type);
      } else if (timeframe) view.timeframe = timeframe;
      else if (indicator) {
        view.indicators = view.indicators.includes(indicator)
          ? view.indicators.filter((name) => name !== indicator)
          : INDICATORS.filter((name) => name === indicator || view.indicators.includes(name));
      } else if ("volume" in button.dataset) view.volume = !view.volume;
      else return;
      setView(chart, view);
    });
    showView(chart);
  }

  function showView(chart) {
    const bar = chart.card.querySelector(".view-bar");
    for (const button of bar.querySelectorAll("button")) {
      const { chart: type, timeframe, indicator } = button.dataset;
      const on = type ? chart.view.chart === type
        : timeframe ? chart.view.timeframe === timeframe
          : indicator ? chart.view.indicators.includes(indicator)
            : chart.view.volume;
      button.setAttribute("aria-pressed", String(on));
    }
    chart.card.dataset.view = chart.viewKey;
  }

  function setView(chart, view) {
    if (sameView(view, chart.view)) return;
    chart.view = view;
    chart.viewKey = viewKey(view);
    chart.userZoomedY = false;
    chart.xView = null;
    chart.urgent = true; // the new view's first figure
    showView(chart);
    persist();
    if (socket.connected) subscribe(chart); // the gateway moves it to the view's room
  }

  function removeChart(symbol) {
    const chart = charts.get(symbol);
    if (!chart) return;
    charts.delete(symbol);
    viewport.unobserve(chart.plot);
    if (chart.drawn) Plotly.purge(chart.plot);
    chart.card.remove();
    socket.emit("unsubscribe", { symbol });
    persist();
  }

  function subscribe(chart) {
    // What the chart holds of this view, to resume from (after a reconnect).
    const since = !resumeRefused && chart.data && chart.seq !== null && chart.epoch !== null
      && chart.heldKey === chart.viewKey ? { seq: chart.seq, epoch: chart.epoch } : null;
    if (!since) {
      chart.seq = null; // accept whatever snapshot comes next
      chart.epoch = null;
    }
    // A figure before the ack replaces what the chart holds, whatever its seq: the
    // gateway sends one only when it cannot resume.
    chart.snapshotPending = since !== null;
    const { view } = chart;
    const asked = chart.viewKey;
    const request = { symbol: chart.symbol, updates: "delta", chart: view.chart,
                      timeframe: view.timeframe, indicators: view.indicators,
                      volume: view.volume };
    if (since) request.since = since;
    socket.emit("subscribe", request, (ack) => {
      if (since) chart.snapshotPending = false; // answered: a gap may ask for a snapshot
      if (since && ack && ack.ok && ack.resumed) stats.resumes += 1;
      if (since && ack && !ack.ok && /"since"/.test(ack.error || "")) {
        resumeRefused = true; // an older gateway: subscribe as it knows how
        subscribe(chart);
        return;
      }
      if ((ack && ack.ok) || chart.viewKey !== asked) return;
      const reason = (ack && ack.error) || "refused";
      if (chart.data) {
        setStatus(chart, "stale", reason); // e.g. temporarily unavailable: keep the chart
        return;
      }
      charts.delete(chart.symbol);
      viewport.unobserve(chart.plot);
      chart.card.remove();
      $("add-error").textContent = `${chart.symbol}: ${reason}`;
      persist();
    });
  }

  function addSymbol(raw, view = parseView(new URLSearchParams(location.search).get("view"))) {
    const symbol = normalize(raw);
    $("add-error").textContent = "";
    if (!symbol) return;
    if (charts.has(symbol)) {
      $("add-error").textContent = `${symbol} is already on the page`;
      return;
    }
    // The card exists before the ack, because the snapshot is sent before it.
    const chart = createChart(symbol, view);
    if (socket.connected) subscribe(chart); // otherwise "connect" subscribes every chart
    persist();
    chart.card.scrollIntoView({ block: "nearest" }); // the chart just asked for, in view
  }

  // -- updates --------------------------------------------------------------------------

  // The chart an update is for: none when the chart is gone or shows another view now.
  function chartFor(payload) {
    const chart = charts.get(payload.symbol);
    return chart && (payload.view ?? "") === chart.viewKey ? chart : null;
  }

  function onFigure(payload) {
    const chart = chartFor(payload);
    if (!chart) return;
    // Older or equal in the same epoch: a live update and a snapshot crossed. Unless this
    // is the snapshot asked for: it may be older, and its catch-up delta follows it.
    const sameEpoch = chart.epoch === (payload.epoch ?? null);
    if (chart.seq !== null && sameEpoch && !chart.snapshotPending && payload.seq <= chart.seq) {
      return;
    }
    // The card's header names the symbol, so the chart drops its title and margins.
    const layout = { ...payload.figure.layout, title: { text: "" },
                     margin: MARGIN };
    if (chart.userZoomedY && chart.layout) {
      // Keep the viewer's own y range (uirevision keeps x; this keeps y too).
      layout.yaxis = { ...layout.yaxis, range: chart.layout.yaxis.range };
    }
    chart.data = payload.figure.data;
    chart.layout = layout;
    chart.styleY = (payload.figure.layout.yaxis || {}).range || null;
    const xs = chart.data[0].x;
    chart.start = xs.length ? xs[0] : Infinity;
    chart.held = xs.length ? [[xs[0], Infinity]] : [];
    chart.floor = -Infinity;
    chart.pastAsked = null; // an answer for what it held before is not for this figure
    chart.storeLoading = Boolean(layout.meta && layout.meta.loading_history);
    markLoading(chart);
    markDirty(chart);
    chart.seq = payload.seq;
    chart.epoch = payload.epoch ?? null;
    chart.heldKey = payload.view ?? "";
    chart.snapshotPending = false;
    stats.snapshots += 1;
    updated(chart);
    askPast(chart); // a new figure while the person looks at the past: the bars there
  }

  function onBars(delta) {
    const chart = chartFor(delta);
    if (!chart) return;
    if (!chart.data || chart.seq === null) {
      requestSnapshot(chart, false); // the snapshot was missed or never existed
      return;
    }
    if ((delta.epoch ?? null) !== chart.epoch) {
      requestSnapshot(chart, true); // the store started again: our seq means nothing
      return;
    }
    if (delta.seq <= chart.seq) return;
    if (delta.base_seq !== chart.seq) {
      requestSnapshot(chart, true);
      return;
    }
    applyDelta(chart, delta);
    chart.seq = delta.seq;
    chart.deltas += 1;
    stats.deltasApplied += 1;
    updated(chart);
  }

  // Where each array of a trace comes from in a delta's row
  // [x, open, high, low, close, volume, <indicators>]: a column, or a function of the
  // row. Traces come in the order the renderer draws them (renderer/views.py): the
  // price, one line per indicator, then the volume bars.
  function traceSources(trace, index) {
    if (trace.type === "candlestick" || trace.type === "ohlc") {
      return { open: 1, high: 2, low: 3, close: 4 };
    }
    if (trace.type === "bar") {
      return { y: 5, "marker.color": (row) => (row[4] >= row[1] ? UP : DOWN) };
    }
    return { y: index === 0 ? 4 : 5 + index };
  }

  function arrayOf(trace, name) {
    return name === "marker.color" ? trace.marker.color : trace[name];
  }

  // Holding the figure of base_seq: drop the bars before `keep` (when the delta has one:
  // bars before the chart's first changed) and from the delta's first row on, write
  // `head` over the bars of the same x (the window moved on: the first bar and the
  // indicators' first values changed), append the delta's rows, and apply what changed
  // in the look. The page then holds exactly the figure of `seq` from `start` on, and
  // before it, while they are in view, the older bars it loaded or the live edge left
  // behind (docs/views.md).
  function applyDelta(chart, delta) {
    const { data } = chart;
    const xs = data[0].x;
    const start = delta.start * 1000;
    let keep = delta.keep === undefined ? -Infinity : delta.keep * 1000;
    // The bars before the chart's are kept while the person looks at them; otherwise the
    // page holds the chart only (a pan brings them back), and does not grow all day.
    if (!(chart.xView && chart.xView[0] < start)) keep = Math.max(keep, start);
    const firstNew = delta.bars.length ? delta.bars[0][0] * 1000 : Infinity;
    const begin = lowerBound(xs, keep);
    const end = Math.max(begin, lowerBound(xs, firstNew));
    const sources = data.map(traceSources);
    data.forEach((trace, i) => {
      for (const name of ["x", ...Object.keys(sources[i])]) {
        const values = arrayOf(trace, name);
        values.splice(end);
        values.splice(0, begin);
      }
    });
    if (keep > -Infinity) dropPast(chart, keep);
    const put = (row, at) => {
      data.forEach((trace, i) => {
        const x = trace.x;
        if (at === null) x.push(row[0] * 1000);
        else x[at] = row[0] * 1000;
        for (const [name, source] of Object.entries(sources[i])) {
          const value = typeof source === "function" ? source(row) : row[source];
          const values = arrayOf(trace, name);
          if (at === null) values.push(value);
          else values[at] = value;
        }
      });
    };
    for (const row of delta.head || []) {
      const at = lowerBound(xs, row[0] * 1000);
      if (xs[at] === row[0] * 1000) put(row, at);
    }
    if (delta.head) stats.heads += 1;
    delta.bars.forEach((row) => put(row, null));
    chart.start = start;
    // The style carries only what changed since the base snapshot.
    const { color, y_range: yRange, loading } = delta.style;
    if (loading !== undefined) {
      chart.storeLoading = loading;
      markLoading(chart);
    }
    if (color) data[0].line = { ...data[0].line, color };
    const { layout } = chart;
    if (yRange) chart.styleY = yRange;
    if (yRange && !chart.userZoomedY) {
      layout.yaxis = { ...layout.yaxis, range: yRange, autorange: false };
    }
    markDirty(chart);
    // Looking at the past, which a `keep` may just have dropped: asked for again.
    if (chart.xView && chart.xView[0] < start) askPast(chart);
  }

  // The first index of sorted `xs` whose value is `x` or more (thin.js's).
  const { lowerBound } = rtplotThin;

  // -- the past, on demand ---------------------------------------------------------------

  // A person who pans or zooms out past the oldest bar held sees the bars there within a
  // moment: the page asks the gateway for that view's bars in the range shown (a
  // `history` request: at most HISTORY_ROWS, the newest of the range first), puts them
  // in by x and draws. Only what is missing of the range shown is asked for, one
  // request at a time per chart; a range far back is asked for as it is, not every day
  // in between.
  const HISTORY_ROWS = 2000;
  const PAST_RETRY_MS = 5000; // after a refusal (rate limited, unavailable): not sooner

  // Whether it asked.
  function askPast(chart) {
    if (!chart.data || chart.pastAsked || !chart.xView || chart.epoch === null) return false;
    if (performance.now() < chart.pastRefusedUntil) return false; // refused a moment ago
    const piece = missing(chart, chart.xView[0], chart.xView[1]);
    if (!piece) return false;
    const [from, to] = piece;
    const { view } = chart;
    const request = { symbol: chart.symbol, chart: view.chart, timeframe: view.timeframe,
                      indicators: view.indicators, volume: view.volume,
                      before: Math.ceil(to / 1000), count: HISTORY_ROWS };
    if (from > -Infinity) request.after = Math.floor(from / 1000);
    if (request.after !== undefined && request.after >= request.before) return false;
    const asked = { key: chart.viewKey }; // its identity: an answer to an older ask is dropped
    chart.pastAsked = asked;
    markLoading(chart);
    socket.emit("history", request, (ack) => {
      if (chart.pastAsked !== asked) return; // another figure, or view, since
      chart.pastAsked = null;
      markLoading(chart);
      if (!ack || !ack.ok || ack.epoch !== chart.epoch || chart.viewKey !== asked.key) {
        if (!ack || !ack.ok) chart.pastRefusedUntil = performance.now() + PAST_RETRY_MS;
        markDirty(chart); // the range shown, with what the chart holds
        return;
      }
      stats.pastLoads += 1;
      const rows = ack.rows;
      const upTo = request.before * 1000;
      // All the bars of [after, before) came, or the newest `count` of them: from `first`.
      const full = rows.length >= request.count;
      const from = full ? ack.first * 1000 : (request.after ?? -Infinity) * 1000;
      if (ack.oldest) chart.floor = Math.max(chart.floor, ack.first * 1000);
      putPast(chart, rows);
      addHeld(chart, [from, upTo]);
      chart.urgent = true; // the viewer is waiting for it
      markDirty(chart);
      performance.mark("rtplot:past", { detail: { symbol: chart.symbol, rows: rows.length } });
      if (full) askPast(chart); // more of the range shown may be missing
    });
    return true;
  }

  // The newest stretch [begin, end) of [from, to] (ms) the chart may lack bars of, or
  // null. `held` is sorted: [lo, hi) ranges the chart holds every bar of.
  function missing(chart, from, to) {
    let end = to;
    for (let i = chart.held.length - 1; i >= 0; i -= 1) {
      const [lo, hi] = chart.held[i];
      if (lo < end && end <= hi) end = lo; // held up to there: the gap is older
      else if (hi < end) break; // a gap from hi to end
    }
    let begin = Math.max(from, chart.floor);
    if (end <= begin) return null;
    for (const [, hi] of chart.held) if (hi < end && hi > begin) begin = hi;
    return [begin, end];
  }

  function addHeld(chart, [lo, hi]) {
    const all = [...chart.held, [lo, hi]].sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const range of all) {
      const last = merged[merged.length - 1];
      if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
      else merged.push([...range]);
    }
    chart.held = merged;
  }

  // Bars before `keep` were dropped: the ranges held start there at the earliest.
  function dropPast(chart, keep) {
    chart.held = chart.held.filter(([, hi]) => hi > keep).map(([lo, hi]) => [Math.max(lo, keep), hi]);
    chart.floor = -Infinity;
  }

  // A history answer's rows, in by x: those of an x already held are left out.
  function putPast(chart, rows) {
    const { data } = chart;
    const xs = data[0].x;
    const fresh = rows.filter((row) => {
      const at = lowerBound(xs, row[0] * 1000);
      return xs[at] !== row[0] * 1000;
    });
    if (!fresh.length) return;
    const sources = data.map(traceSources);
    // Merged by x: each array rebuilt once, whatever the number of rows.
    const order = [];
    let i = 0;
    let j = 0;
    while (i < xs.length || j < fresh.length) {
      if (j < fresh.length && (i >= xs.length || fresh[j][0] * 1000 < xs[i])) order.push([1, j++]);
      else order.push([0, i++]);
    }
    data.forEach((trace, t) => {
      for (const name of ["x", ...Object.keys(sources[t])]) {
        const old = arrayOf(trace, name);
        const source = name === "x" ? 0 : sources[t][name];
        const merged = order.map(([isNew, k]) => {
          if (!isNew) return old[k];
          const row = fresh[k];
          return typeof source === "function" ? source(row) : name === "x" ? row[0] * 1000 : row[source];
        });
        if (name === "marker.color") trace.marker = { ...trace.marker, color: merged };
        else trace[name] = merged;
      }
    });
  }

  // -- drawing: only what is seen, once per frame ---------------------------------------

  const waiting = new Set(); // charts to draw in the next frame, oldest first
  let frameAsked = false;
  let budget = BUDGET_CAP_MS; // ms of drawing allowed now: DRAW_SHARE of the time passed
  let budgetAt = performance.now();
  let refillTimer = 0;

  function refill() {
    const now = performance.now();
    budget = Math.min(BUDGET_CAP_MS, budget + (now - budgetAt) * DRAW_SHARE);
    budgetAt = now;
  }

  function canDraw(chart) {
    return chart.seen && !document.hidden && charts.get(chart.symbol) === chart;
  }

  function markDirty(chart) {
    chart.dirty = true;
    if (canDraw(chart)) {
      waiting.add(chart);
      askFrame();
    }
  }

  function askFrame() {
    if (frameAsked) return;
    frameAsked = true;
    requestAnimationFrame(drawWaiting);
  }

  function drawWaiting() {
    frameAsked = false;
    const started = performance.now();
    let drew = false;
    let held = false;
    for (const chart of waiting) {
      if (drew && performance.now() - started > FRAME_BUDGET_MS) break;
      if (!chart.dirty || !canDraw(chart)) {
        waiting.delete(chart);
        continue;
      }
      refill();
      if (budget <= 0 && chart.drawn && !chart.urgent) {
        held = true; // a live redraw, over budget: it keeps its turn
        continue;
      }
      waiting.delete(chart);
      const before = performance.now();
      draw(chart);
      refill();
      // What a first draw costs beyond the budget is not carried further than one cap:
      // live redraws resume within BUDGET_CAP_MS / DRAW_SHARE (about 2 s) of it.
      budget = Math.max(budget - (performance.now() - before), -BUDGET_CAP_MS);
      drew = true;
    }
    if (drew) {
      stats.frames += 1;
      // The browser's style, layout and paint of what was drawn follow this frame's
      // callbacks, and cost as much again as Plotly's own work: a task posted now runs
      // after them, and the time until it is charged to the budget too.
      const drawnAt = performance.now();
      setTimeout(() => {
        refill();
        budget = Math.max(budget - (performance.now() - drawnAt), -BUDGET_CAP_MS);
      }, 0);
    }
    if (held) stats.held += 1;
    if (!waiting.size) return;
    if (budget > 0 || !held) askFrame();
    else if (!refillTimer) { // nothing to draw until the budget has refilled
      refillTimer = setTimeout(() => {
        refillTimer = 0;
        askFrame();
      }, -budget / DRAW_SHARE + 1);
    }
  }

  function draw(chart) {
    const { layout } = chart;
    // A new revision tells Plotly.react the arrays changed in place.
    chart.draws += 1;
    layout.datarevision = `${chart.epoch}:${chart.seq}:${chart.draws}`;
    chart.dirty = false;
    chart.urgent = false;
    if (!chart.userZoomedY) {
      // Zoomed or panned (into the past, say), the price axis fits the bars in view;
      // else it is the renderer's, which fits the chart's bars.
      const range = (chart.xView && fitY(chart.data[0], chart.xView)) || chart.styleY;
      if (range) layout.yaxis = { ...layout.yaxis, range, autorange: false };
    }
    const volume = chart.data[chart.data.length - 1];
    if (layout.yaxis2 && volume.type === "bar") { // the volume pane: its bars in view
      const most = chart.xView && fitY(volume, chart.xView);
      layout.yaxis2 = most ? { ...layout.yaxis2, range: [0, most[1]], autorange: false }
        : { ...layout.yaxis2, range: undefined, autorange: true };
    }
    const pixels = chart.plot.clientWidth - MARGIN.l - MARGIN.r;
    const shown = rtplotThin.thin(chart.data, chart.xView, pixels);
    chart.applying = true;
    Plotly.react(chart.plot, shown, layout, PLOT_CONFIG);
    chart.applying = false;
    stats.draws += 1;
    if (!chart.drawn) {
      chart.drawn = true;
      chart.plot.on("plotly_relayout", (event) => noticeZoom(chart, event));
      // When each chart was first drawn, for bench.page and the browser's own tools.
      performance.mark("rtplot:drawn", { detail: chart.symbol });
    }
  }

  // The price range of a trace's bars in [lo, hi] (ms), padded as the renderer pads a
  // chart's (renderer/views.py view_style); null if none is there.
  function fitY(trace, [lo, hi]) {
    const from = lowerBound(trace.x, lo);
    const to = lowerBound(trace.x, hi + 1);
    const lows = trace.low || trace.y;
    const highs = trace.high || trace.y;
    let min = Infinity;
    let max = -Infinity;
    for (let i = from; i < to; i += 1) {
      if (lows[i] !== null && lows[i] < min) min = lows[i];
      if (highs[i] !== null && highs[i] > max) max = highs[i];
    }
    if (min > max) return null;
    const pad = Math.max((max - min) * 0.08, 0.01);
    return [min - pad, max + pad];
  }

  // Whatever comes back into view, or a tab shown again, draws what it missed, once.
  function drawDirty() {
    for (const chart of charts.values()) {
      if (chart.dirty && canDraw(chart) && !waiting.has(chart)) {
        chart.urgent = true;
        waiting.add(chart);
      }
    }
    if (waiting.size) askFrame();
  }

  const byPlot = (plot) => [...charts.values()].find((chart) => chart.plot === plot);
  const viewport = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const chart = byPlot(entry.target);
      if (chart) chart.seen = entry.isIntersecting;
    }
    drawDirty();
  }, { rootMargin: NEAR_VIEWPORT });
  document.addEventListener("visibilitychange", drawDirty);

  function requestSnapshot(chart, gap) {
    if (chart.snapshotPending) return;
    chart.snapshotPending = true;
    if (gap) stats.gaps += 1;
    socket.emit("snapshot", { symbol: chart.symbol }, (ack) => {
      if (!ack || !ack.ok) chart.snapshotPending = false;
    });
  }

  function noticeZoom(chart, event) {
    if (chart.applying) return;
    if (event["yaxis.autorange"]) chart.userZoomedY = false;
    else if ("yaxis.range[0]" in event || "yaxis.range" in event) chart.userZoomedY = true;
    if (Object.keys(event).some((key) => key.startsWith("xaxis"))) {
      // Zoomed, panned or reset: draw the detail of the new range.
      const axis = chart.plot.layout.xaxis;
      chart.xView = axis.autorange || !axis.range ? null : axis.range.map(toMs);
      chart.urgent = true;
      // Panned or zoomed past the oldest bar held: the bars there are asked for, and the
      // chart is drawn when they come (Plotly has drawn the new range meanwhile).
      if (!askPast(chart)) markDirty(chart);
    }
  }

  // A date axis' bound ("2026-12-02 14:05:00.5", or epoch ms) in epoch ms; plotly.js
  // writes dates as UTC, which is how the x of rtplot's figures reads the exchange's clock.
  function toMs(value) {
    if (typeof value === "number") return value;
    const [day, time = "00:00"] = String(value).split(" ");
    const [hms, fraction = "0"] = time.split(".");
    return Date.parse(`${day}T${hms}Z`) + Number(`0.${fraction}`) * 1000;
  }

  // -- what the card says ---------------------------------------------------------------

  function updated(chart) {
    chart.lastUpdate = Date.now();
    const price = chart.data[0];
    const y = price.close || price.y; // candles and ohlc, or a mountain
    const head = chart.card;
    // Since the chart's first bar: not the first of the older ones loaded as it panned.
    const first = y[Math.min(lowerBound(price.x, chart.start), y.length - 1)];
    if (y.length) {
      const last = y[y.length - 1];
      const change = last - first;
      const percent = first ? (change / first) * 100 : 0;
      const sign = change > 0 ? "+" : "";
      head.querySelector(".price").textContent = last.toFixed(2);
      const changeEl = head.querySelector(".change");
      changeEl.textContent = `${sign}${change.toFixed(2)} (${sign}${percent.toFixed(2)}%)`;
      changeEl.className = `change ${change > 0 ? "up" : change < 0 ? "down" : ""}`;
    }
    head.querySelector(".updated").textContent = new Date(chart.lastUpdate).toLocaleTimeString();
    setStatus(chart, "live");
  }

  // The charts the live stream feeds are marked on their card; the source badge stays
  // page-wide. Asked of the gateway (/streaming), only when the stream is on.
  let streamed = new Set();

  function markStreamed(chart) {
    const on = streamed.has(chart.symbol);
    chart.card.querySelector(".streamed").hidden = !on;
    chart.card.dataset.streamed = on ? "yes" : "no";
  }

  async function refreshStreamed() {
    try {
      const response = await fetch("streaming", { cache: "no-store" });
      if (!response.ok) return;
      streamed = new Set((await response.json()).symbols);
    } catch {
      return; // the gateway is away: the socket's status says so
    }
    for (const chart of charts.values()) markStreamed(chart);
  }

  // A view's chart whose past (the store's history) is still on its way says so; its
  // bars from the last 7 days are drawn meanwhile (docs/views.md).
  function markLoading(chart) {
    const loading = chart.storeLoading || chart.pastAsked !== null;
    chart.card.querySelector(".loading-history").hidden = !loading;
    chart.card.dataset.loadingHistory = loading ? "yes" : "no";
  }

  function setStatus(chart, state, title = "") {
    const el = chart.card.querySelector(".status");
    el.className = `status status-${state}`;
    el.textContent = state;
    el.title = title;
    chart.card.dataset.status = state;
  }

  function refreshStatuses() {
    const now = Date.now();
    for (const chart of charts.values()) {
      if (!socket.connected) setStatus(chart, "reconnecting");
      else if (chart.lastUpdate && now - chart.lastUpdate > STALE_MS) {
        setStatus(chart, "stale", "no update for more than two fetch intervals");
      }
    }
  }

  function setConnection(state, text) {
    const el = $("connection");
    el.className = `status status-${state}`;
    el.textContent = text;
    document.body.dataset.connection = state;
  }

  function renderSuggestions() {
    const box = $("suggestions");
    box.replaceChildren();
    for (const symbol of config.symbols) {
      if (charts.has(symbol)) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `+ ${symbol}`;
      button.addEventListener("click", () => addSymbol(symbol));
      box.appendChild(button);
    }
  }

  // -- wiring ---------------------------------------------------------------------------

  socket.on("connect", () => {
    resumeRefused = false; // perhaps another gateway: ask it
    setConnection("live", "live");
    for (const chart of charts.values()) subscribe(chart);
  });
  socket.on("disconnect", () => {
    setConnection("reconnecting", "reconnecting…");
    refreshStatuses();
  });
  socket.io.on("reconnect_attempt", () => setConnection("reconnecting", "reconnecting…"));
  socket.on("figure", onFigure);
  socket.on("bars", onBars);

  $("add-form").addEventListener("submit", (event) => {
    event.preventDefault();
    addSymbol($("symbol-input").value);
    $("symbol-input").value = "";
  });
  for (const symbol of config.symbols) {
    const option = document.createElement("option");
    option.value = symbol;
    $("configured").appendChild(option);
  }
  const source = $("source");
  source.textContent = config.source_name ? `${config.source_name} · your own source`
                                           : SOURCES[config.source] || config.source;
  source.classList.add(config.source);

  for (const { symbol, view } of initialCharts()) {
    if (!charts.has(symbol)) createChart(symbol, view);
  }
  persist();
  setInterval(refreshStatuses, 1000);
  if (config.stream) {
    refreshStreamed();
    setInterval(refreshStreamed, STREAMING_EVERY_MS);
  }

  // For tests and the curious: setView(symbol, "candles,5m") switches a chart's view.
  const setViewOf = (symbol, words) => {
    const chart = charts.get(normalize(symbol));
    if (chart) setView(chart, parseView(words));
  };
  window.rtplot = { charts, stats, socket, viewKey, parseView, setView: setViewOf };
})();
