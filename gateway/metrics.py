"""The gateway's Prometheus metrics."""

from contextlib import suppress

from prometheus_client import Counter, Gauge, Histogram

CLIENTS = Gauge("rtplot_gateway_clients", "Connected Socket.IO clients")
SUBSCRIPTIONS = Gauge("rtplot_gateway_subscriptions", "Subscriptions on this gateway", ["symbol"])
EVENTS_IN = Counter("rtplot_gateway_events_in_total", "Client events received", ["event"])
SNAPSHOTS_OUT = Counter("rtplot_gateway_snapshots_out_total", "Snapshots sent on subscribe")
DRAINED = Counter(
    "rtplot_gateway_drained_total", "Clients closed by a drain, on SIGTERM, to reconnect elsewhere"
)
READS_SHARED = Counter(
    "rtplot_gateway_reads_shared_total",
    "Snapshot, resume and history reads a client shared with another asking the same in "
    "the same turn of the event loop, instead of reading Redis itself",
    ["read"],
)
RESUMES = Counter(
    "rtplot_gateway_resumes_total",
    "Subscribes that asked to resume from a seq, by outcome: resumed, current (nothing "
    "to send), other_epoch and too_old (each sent the snapshot instead)",
    ["outcome"],
)
HISTORY_ROWS = Counter(
    "rtplot_gateway_history_rows_total",
    "Rows of bars sent in answer to history requests (the past of a view, as a person pans)",
)
REFUSED = Counter("rtplot_gateway_refused_total", "Requests refused", ["event", "reason"])
EVENTS_OUT = Counter(
    "rtplot_gateway_events_out_total", "Events delivered to clients by the queue", ["event"]
)
EMIT_SECONDS = Histogram(
    "rtplot_gateway_emit_seconds",
    "Time to relay one queued update to a room",
    ["event"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LISTENER_BATCH = Histogram(
    "rtplot_gateway_listener_batch_updates",
    "Messages the queue listener read together; a client gets its frames among them in one write",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
LISTENER_UP = Gauge("rtplot_gateway_listener_up", "1 while the message-queue listener runs")
WEBSOCKET_SESSIONS = Counter(
    "rtplot_gateway_websocket_sessions_total",
    "WebSocket sessions, by path: direct (written by rtplot) or library (python-engineio's)",
    ["path"],
)


def set_viewers(symbol: str, count: int) -> None:
    """The subscriptions gauge of a symbol: a symbol nobody watches has no series."""
    if count:
        SUBSCRIPTIONS.labels(symbol).set(count)
    else:
        with suppress(KeyError):  # never set
            SUBSCRIPTIONS.remove(symbol)
