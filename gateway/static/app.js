// rtplot's page: live charts over Socket.IO, kept current with small `bars` deltas.
//
// Each chart subscribes in delta mode: the gateway sends the stored figure once (the
// snapshot, maybe a few seconds old, with a `bars` event catching it up), then `bars`
// events holding only what changed. A delta applies only on top of the seq it was made
// from (`base_seq`) in the same epoch; on any gap, and after every reconnect, the page
// asks for a fresh snapshot instead of guessing. A new epoch (the store was reset and
// its versions started again) is taken as a fresh snapshot, whatever its seq.
"use strict";

(() => {
  const config = window.RTPLOT_CONFIG;
  const STALE_MS = Math.max(2 * config.interval * 1000, 2000); // two fetch intervals
  const STORAGE_KEY = "rtplot.symbols";
  const SOURCES = {
    synthetic: "synthetic market · simulated prices, not real",
    yfinance: "Yahoo Finance · delayed quotes",
    csv: "CSV replay · recorded prices",
  };
  // On a phone the mode bar would cover the range buttons; pinch-zoom does its work there.
  const PLOT_CONFIG = { responsive: true, displaylogo: false,
                        displayModeBar: matchMedia("(max-width: 600px)").matches ? false : "hover" };

  const charts = new Map(); // symbol -> chart state
  const stats = { snapshots: 0, deltasApplied: 0, gaps: 0 };
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
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });

  // -- the symbol set: URL first, then local storage, then the configured symbols -------

  function initialSymbols() {
    const fromUrl = new URLSearchParams(location.search).get("symbols");
    if (fromUrl !== null) return fromUrl.split(",").map(normalize).filter(Boolean);
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY));
      if (Array.isArray(saved)) return saved.map(normalize).filter(Boolean);
    } catch (_) { /* unreadable storage: fall back to the defaults */ }
    return config.symbols.slice(0, 4);
  }

  function normalize(raw) {
    return String(raw).trim().toUpperCase();
  }

  function persist() {
    const symbols = [...charts.keys()];
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(symbols));
    } catch (_) { /* private mode: the URL still carries the set */ }
    const url = new URL(location.href);
    url.searchParams.set("symbols", symbols.join(","));
    history.replaceState(null, "", url);
    $("empty").hidden = symbols.length > 0;
    renderSuggestions();
  }

  // -- charts ---------------------------------------------------------------------------

  function createChart(symbol) {
    const card = $("chart-template").content.firstElementChild.cloneNode(true);
    card.dataset.symbol = symbol;
    card.querySelector(".symbol").textContent = symbol;
    card.querySelector(".remove").addEventListener("click", () => removeChart(symbol));
    $("grid").appendChild(card);
    const chart = {
      symbol, card, plot: card.querySelector(".plot"),
      seq: null, epoch: null, lastUpdate: 0, snapshotPending: false, drawn: false,
      userZoomedY: false, applying: false,
    };
    charts.set(symbol, chart);
    return chart;
  }

  function removeChart(symbol) {
    const chart = charts.get(symbol);
    if (!chart) return;
    charts.delete(symbol);
    if (chart.drawn) Plotly.purge(chart.plot);
    chart.card.remove();
    socket.emit("unsubscribe", { symbol });
    persist();
  }

  function subscribe(chart) {
    chart.seq = null; // accept whatever snapshot comes next
    chart.epoch = null;
    socket.emit("subscribe", { symbol: chart.symbol, updates: "delta" }, (ack) => {
      if (ack && ack.ok) return;
      const reason = (ack && ack.error) || "refused";
      if (chart.drawn) {
        setStatus(chart, "stale", reason); // e.g. temporarily unavailable: keep the chart
        return;
      }
      charts.delete(chart.symbol);
      chart.card.remove();
      $("add-error").textContent = `${chart.symbol}: ${reason}`;
      persist();
    });
  }

  function addSymbol(raw) {
    const symbol = normalize(raw);
    $("add-error").textContent = "";
    if (!symbol) return;
    if (charts.has(symbol)) {
      $("add-error").textContent = `${symbol} is already on the page`;
      return;
    }
    // The card exists before the ack, because the snapshot is sent before it.
    const chart = createChart(symbol);
    if (socket.connected) subscribe(chart); // otherwise "connect" subscribes every chart
    persist();
  }

  // -- updates --------------------------------------------------------------------------

  function onFigure(payload) {
    const chart = charts.get(payload.symbol);
    if (!chart) return;
    // Older or equal in the same epoch: a live update and a snapshot crossed. Unless this
    // is the snapshot asked for: it may be older, and its catch-up delta follows it.
    const sameEpoch = chart.epoch === (payload.epoch ?? null);
    if (chart.seq !== null && sameEpoch && !chart.snapshotPending && payload.seq <= chart.seq) {
      return;
    }
    // The card's header names the symbol, so the chart drops its title and margins.
    const layout = { ...payload.figure.layout, title: { text: "" },
                     margin: { l: 48, r: 16, t: 36, b: 36 } };
    if (chart.userZoomedY && chart.drawn) {
      // Keep the viewer's own y range (uirevision keeps x; this keeps y too).
      layout.yaxis = { ...layout.yaxis, range: chart.plot.layout.yaxis.range };
    }
    chart.applying = true;
    Plotly.react(chart.plot, payload.figure.data, layout, PLOT_CONFIG);
    chart.applying = false;
    if (!chart.drawn) {
      chart.drawn = true;
      chart.plot.on("plotly_relayout", (event) => noticeZoom(chart, event));
    }
    chart.seq = payload.seq;
    chart.epoch = payload.epoch ?? null;
    chart.snapshotPending = false;
    stats.snapshots += 1;
    updated(chart);
  }

  function onBars(delta) {
    const chart = charts.get(delta.symbol);
    if (!chart) return;
    if (!chart.drawn || chart.seq === null) {
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
    stats.deltasApplied += 1;
    updated(chart);
  }

  function applyDelta(chart, delta) {
    const trace = chart.plot.data[0];
    const firstNew = delta.bars.length ? delta.bars[0][0] * 1000 : Infinity;
    const start = delta.start * 1000;
    // Points from the first delta bar on are replaced; points before the window go.
    let end = trace.x.length;
    while (end > 0 && trace.x[end - 1] >= firstNew) end -= 1;
    let begin = 0;
    while (begin < end && trace.x[begin] < start) begin += 1;
    trace.x.splice(end);
    trace.y.splice(end);
    trace.x.splice(0, begin);
    trace.y.splice(0, begin);
    chart.applying = true;
    if (delta.bars.length) {
      const x = delta.bars.map((bar) => bar[0] * 1000);
      const y = delta.bars.map((bar) => bar[4]);
      Plotly.extendTraces(chart.plot, { x: [x], y: [y] }, [0]);
    }
    // The style carries only what changed since the base snapshot.
    const { color, y_range: yRange } = delta.style;
    const restyle = color ? { "line.color": color } : {};
    const layout = yRange && !chart.userZoomedY ? { "yaxis.range": yRange } : {};
    Plotly.update(chart.plot, restyle, layout, [0]);
    chart.applying = false;
  }

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
  }

  // -- what the card says ---------------------------------------------------------------

  function updated(chart) {
    chart.lastUpdate = Date.now();
    const y = chart.plot.data[0].y;
    const head = chart.card;
    if (y.length) {
      const last = y[y.length - 1];
      const change = last - y[0];
      const percent = y[0] ? (change / y[0]) * 100 : 0;
      const sign = change > 0 ? "+" : "";
      head.querySelector(".price").textContent = last.toFixed(2);
      const changeEl = head.querySelector(".change");
      changeEl.textContent = `${sign}${change.toFixed(2)} (${sign}${percent.toFixed(2)}%)`;
      changeEl.className = `change ${change > 0 ? "up" : change < 0 ? "down" : ""}`;
    }
    head.querySelector(".updated").textContent = new Date(chart.lastUpdate).toLocaleTimeString();
    setStatus(chart, "live");
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
  source.textContent = SOURCES[config.source] || config.source;
  source.classList.add(config.source);

  for (const symbol of initialSymbols()) {
    if (!charts.has(symbol)) createChart(symbol);
  }
  persist();
  setInterval(refreshStatuses, 1000);

  window.rtplot = { charts, stats, socket }; // for tests and the curious
})();
