"""rtplot stream's Prometheus metrics (served on RTPLOT_METRICS_PORT, 9104 by default)."""

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("rtplot_stream_ticks_total", "Trades received from the live stream")
BAD_FRAMES = Counter(
    "rtplot_stream_bad_frames_total", "Frames that were no usable trade, by kind", ["kind"]
)
OUTSIDE_SESSION = Counter(
    "rtplot_stream_outside_session_total",
    "Trades outside their symbol's session (pre- and post-market), not folded",
)
RECONNECTS = Counter("rtplot_stream_reconnects_total", "Connections to the streamer made again")
CONNECTED = Gauge("rtplot_stream_connected", "1 while connected to the streamer")
ACTIVE = Gauge("rtplot_stream_active", "1 if this process holds the stream, 0 as a standby")
SUBSCRIBED = Gauge("rtplot_stream_subscribed_symbols", "Symbols subscribed to")
STREAMING = Gauge(
    "rtplot_stream_streaming_symbols", "Subscribed symbols with a trade in the last minute"
)
LAST_TICK_AGE = Gauge(
    "rtplot_stream_last_tick_age_seconds",
    "Seconds since the symbol's last trade arrived",
    ["symbol"],
)
WRITES = Counter("rtplot_stream_writes_total", "Symbol writes to the store")
WRITE_SECONDS = Histogram(
    "rtplot_stream_write_seconds",
    "Time one round of writes took (every symbol due, one pipeline)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
