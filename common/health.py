"""/metrics and /healthz for the services that have no web server of their own
(worker, beat, renderer), on a small HTTP server in a daemon thread.

``check`` returns the health report; its ``ok`` key decides 200 or 503, so the endpoint
tells real state (Redis reachable, last tick recent, loop alive), never a constant 200.
"""

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("rtplot.health")

HealthCheck = Callable[[], dict[str, Any]]


def serve_health(host: str, port: int, check: HealthCheck) -> ThreadingHTTPServer | None:
    """Start the server; None (and an error logged) if the port is taken or disabled."""
    if port == 0:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest())
            elif self.path == "/healthz":
                report = _safe(check)
                self._reply(
                    200 if report.get("ok") else 503, "application/json", orjson.dumps(report)
                )
            else:
                self._reply(404, "text/plain", b"Not Found")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the service's own log

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        log.error("cannot serve /metrics and /healthz", extra={"port": port, "error": str(exc)})
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("serving /metrics and /healthz", extra={"port": server.server_address[1]})
    return server


def _safe(check: HealthCheck) -> dict[str, Any]:
    try:
        return check()
    except Exception as exc:  # a broken check is an unhealthy service, not a crash
        return {"ok": False, "error": str(exc)}
