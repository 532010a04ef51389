"""The fetcher's Prometheus metrics (served by the worker and the beat processes)."""

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("rtplot_fetcher_ticks_total", "Fetch ticks run", ["outcome"])
BARS_STORED = Counter("rtplot_fetcher_bars_stored_total", "Bars added or replaced")
BARS_REJECTED = Counter("rtplot_fetcher_bars_rejected_total", "Bars refused as insane")
SOURCE_LATENCY = Histogram(
    "rtplot_fetcher_source_latency_seconds",
    "Time the source took to answer a tick",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SOURCE_ERRORS = Counter("rtplot_fetcher_source_errors_total", "Source failures", ["kind"])
STALENESS = Gauge(
    "rtplot_fetcher_symbol_staleness_seconds",
    "Seconds since the symbol's bars last changed",
    ["symbol"],
)
TRACKED = Gauge("rtplot_fetcher_tracked_symbols", "Symbols tracked at the last tick")
INTERVAL = Gauge("rtplot_fetcher_interval_seconds", "The configured fetch interval")
LAST_TICK = Gauge("rtplot_fetcher_last_tick_timestamp_seconds", "When the last tick ran")
BEAT_SENT = Counter("rtplot_beat_ticks_sent_total", "Fetch ticks this beat sent")
BEAT_LAST_SENT = Gauge("rtplot_beat_last_sent_timestamp_seconds", "When this beat last sent")
HISTORY_BARS = Counter(
    "rtplot_fetcher_history_bars_total", "History bars the source gave", ["resolution"]
)
HISTORY_PENDING = Gauge(
    "rtplot_fetcher_history_pending",
    "Symbols' resolutions whose history is due and not yet asked for (0: all filled)",
)
HISTORY_ERRORS = Counter("rtplot_fetcher_history_errors_total", "Failed asks for history")
RESTATED = Counter(
    "rtplot_fetcher_restated_total",
    "Symbols stored again from the source, in a new epoch, because their past changed "
    "after it was stored (a split)",
)
HISTORY_SECONDS = Histogram(
    "rtplot_fetcher_history_seconds",
    "Time the source took to give one resolution's history for a batch of symbols",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
