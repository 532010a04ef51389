// What a chart draws of what it holds: no more points than its pixels can show.
//
// A week of 1-minute bars is 10,080 points on a plot some 600 pixels wide; Plotly's work
// per draw grows with the points it is given, not with the pixels. So before each draw
// the page hands Plotly, for the x range in view, groups of bars no narrower than they
// can be seen, and for the rest of the window (the range slider, and what a pan brings
// in) as many as the slider's width shows:
//
// - a line (the mountain, an indicator) keeps each pixel's lowest and highest point, in
//   time order, which draws the same pixels as every point would;
// - candles, OHLC bars and volume bars merge the bars of every BAR_PIXELS pixels into
//   one, as a longer timeframe would: the open of the first, the highest high, the
//   lowest low, the close of the last, the volumes summed, the colour of the merged bar.
//   (A candle narrower than that shows neither its body nor its wicks; each bar drawn
//   also costs Plotly a style and a colour, twice with the range slider.)
//
// Where the points in view are fewer than the pixels, every one of them is drawn as it
// is. The chart's own data (what deltas apply to) is never changed: only what is drawn.
"use strict";

(() => {
  const UP = "#26a69a"; // the volume bars' colours (renderer/views.py)
  const DOWN = "#ef5350";
  const BAR_PIXELS = 6;

  // The first index whose x is at or after `x` (xs ascending).
  function lowerBound(xs, x) {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // Group boundaries [start, end) over indices lo..hi, `size` bars a group, counted back
  // from hi, so the newest bars always fall in the same groups as updates arrive.
  function groupsOf(lo, hi, size, out) {
    const first = [];
    for (let end = hi; end > lo; end -= size) first.push([Math.max(lo, end - size), end]);
    for (let i = first.length - 1; i >= 0; i -= 1) out.push(first[i]);
  }

  // The groups to draw: in view [inLo, inHi) at most `pixels` groups, outside at most
  // `pixels` over the whole window. null: draw every point.
  function plan(xs, view, pixels) {
    const n = xs.length;
    const budget = Math.max(64, Math.floor(pixels));
    let inLo = 0;
    let inHi = n;
    if (view) {
      inLo = Math.max(0, lowerBound(xs, view[0]) - 1);
      inHi = Math.min(n, lowerBound(xs, view[1]) + 1);
    }
    const inside = Math.ceil((inHi - inLo) / budget);
    const outside = Math.ceil(n / budget);
    if (inside <= 1 && (outside <= 1 || (inLo === 0 && inHi === n))) return null;
    const groups = [];
    groupsOf(0, inLo, Math.max(outside, 1), groups);
    groupsOf(inLo, inHi, Math.max(inside, 1), groups);
    groupsOf(inHi, n, Math.max(outside, 1), groups);
    return groups;
  }

  function lineOf(trace, groups) {
    const xs = trace.x;
    const ys = trace.y;
    const x = [];
    const y = [];
    for (const [a, b] of groups) {
      if (b - a === 1) {
        x.push(xs[a]);
        y.push(ys[a]);
        continue;
      }
      let low = -1;
      let high = -1;
      for (let i = a; i < b; i += 1) {
        const v = ys[i];
        if (v === null || v === undefined) continue;
        if (low < 0 || v < ys[low]) low = i;
        if (high < 0 || v > ys[high]) high = i;
      }
      if (low < 0) { // a gap stays a gap
        x.push(xs[a]);
        y.push(null);
      } else if (low === high) {
        x.push(xs[low]);
        y.push(ys[low]);
      } else {
        const [p, q] = low < high ? [low, high] : [high, low];
        x.push(xs[p], xs[q]);
        y.push(ys[p], ys[q]);
      }
    }
    return { ...trace, x, y };
  }

  function barsOf(trace, groups) {
    const { x: xs, open, high, low, close } = trace;
    const out = { x: [], open: [], high: [], low: [], close: [] };
    for (const [a, b] of groups) {
      let hi = high[a];
      let lo = low[a];
      for (let i = a + 1; i < b; i += 1) {
        if (high[i] > hi) hi = high[i];
        if (low[i] < lo) lo = low[i];
      }
      out.x.push(xs[a]);
      out.open.push(open[a]);
      out.high.push(hi);
      out.low.push(lo);
      out.close.push(close[b - 1]);
    }
    return { ...trace, ...out };
  }

  // Volume bars merged as the price bars are: colour from the merged open and close.
  function volumeOf(trace, groups, price) {
    const { x: xs, y: ys } = trace;
    const opens = price.open || price.y;
    const closes = price.close || price.y;
    const x = [];
    const y = [];
    const color = [];
    for (const [a, b] of groups) {
      let sum = 0;
      for (let i = a; i < b; i += 1) sum += ys[i];
      x.push(xs[a]);
      y.push(sum);
      color.push(closes[b - 1] >= opens[a] ? UP : DOWN);
    }
    return { ...trace, x, y, marker: { ...trace.marker, color } };
  }

  // The traces to draw: `data` as it is, or thinned for `view` ([x0, x1] in the data's
  // x units, null for all) on `pixels` of plot width. All traces have the price's x.
  function thin(data, view, pixels) {
    const price = data[0];
    const lines = plan(price.x, view, pixels);
    const bars = plan(price.x, view, pixels / BAR_PIXELS);
    if (lines === null && bars === null) return data;
    return data.map((trace) => {
      const isBars = trace.type === "candlestick" || trace.type === "ohlc";
      if (isBars || trace.type === "bar") {
        if (bars === null) return trace;
        return isBars ? barsOf(trace, bars) : volumeOf(trace, bars, price);
      }
      return lines === null ? trace : lineOf(trace, lines);
    });
  }

  const api = { thin, plan, lowerBound };
  if (typeof module === "object" && module.exports) module.exports = api; // node's tests
  else window.rtplotThin = api;
})();
