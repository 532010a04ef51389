"""The gateway's Prometheus metrics."""

from prometheus_client import Counter, Gauge

CLIENTS = Gauge("rtplot_gateway_clients", "Connected Socket.IO clients")
SUBSCRIPTIONS = Gauge("rtplot_gateway_subscriptions", "Subscriptions on this gateway", ["symbol"])
EVENTS_IN = Counter("rtplot_gateway_events_in_total", "Client events received", ["event"])
SNAPSHOTS_OUT = Counter("rtplot_gateway_snapshots_out_total", "Snapshots sent on subscribe")
REFUSED = Counter("rtplot_gateway_refused_total", "Requests refused", ["event", "reason"])
