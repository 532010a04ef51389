"""The renderer's Prometheus metrics."""

from prometheus_client import Counter, Histogram

RENDERS = Counter("rtplot_renderer_renders_total", "Figures rendered and published")
VIEW_RENDERS = Counter(
    "rtplot_renderer_view_renders_total",
    "Renders of views other than the default one (included in renders_total)",
)
RENDER_SECONDS = Histogram(
    "rtplot_renderer_render_seconds",
    "Read, build, encode and store one figure",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
PAYLOAD_BYTES = Histogram(
    "rtplot_renderer_payload_bytes",
    "Bytes of each published update",
    ["kind"],
    buckets=(256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304),
)
PUBLISH_ERRORS = Counter("rtplot_renderer_publish_errors_total", "Publishes that failed")
RENDER_ERRORS = Counter(
    "rtplot_renderer_render_errors_total",
    "Renders of a symbol's view that failed on what they read (logged with the symbol, "
    "the view and the traceback; the other views and symbols go on)",
)
LAG = Histogram(
    "rtplot_renderer_lag_seconds",
    "From the bars being stored to the update being published",
    buckets=(
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
        0.4,
        0.5,
        0.75,
        1,
        2.5,
        5,
        10,
        30,
    ),
)
NOTICES = Counter("rtplot_renderer_notices_total", "Change notices handled", ["origin"])
PUBLISHED_BYTES = Counter(
    "rtplot_renderer_published_bytes_total", "Bytes published on room channels", ["event"]
)
READS = Counter(
    "rtplot_renderer_reads_total",
    "Windows read: the bars changed since the one held, all of them, or all of them "
    "again because the window held was out of step with the store",
    ["kind"],
)
HISTORY_READS = Counter(
    "rtplot_renderer_history_reads_total",
    "A symbol's history at one resolution read whole: once per version of it",
)
