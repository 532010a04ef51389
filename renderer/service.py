"""The renderer loop: read change notices as a consumer group, render, store, publish.

Every change notice is read by exactly one renderer of the group and acknowledged only
after its symbol is rendered, so a renderer killed mid-render leaves the notice pending
and another renderer (or this one, restarted) claims it once it has idled for
``CLAIM_IDLE_MS``. A burst of notices for one symbol becomes one render of its latest
state, whatever the number of viewers.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from common.keys import RENDER_GROUP, Keys
from renderer import metrics
from renderer.delta import build_delta
from renderer.figure import build_figure, style_of
from renderer.publish import Publisher, Render
from renderer.snapshots import OLDER, SAME, STORED, SnapshotStore

log = logging.getLogger("rtplot.renderer")

CLAIM_IDLE_MS = 10_000  # a notice pending this long belongs to a dead renderer
CLAIM_EVERY = 5.0  # seconds between looks for such notices
BATCH = 500  # notices read per round; coalesced by symbol
HEARTBEAT_TTL = 30  # seconds


@dataclass
class RoundReport:
    notices: int = 0
    rendered: dict[str, int] = field(default_factory=dict)  # symbol -> seq published


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Renderer:
    def __init__(
        self,
        client: "redis.Redis",
        keys: Keys,
        publisher: Publisher,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.publisher = publisher
        self.name = name or consumer_name()
        self.snapshots = SnapshotStore(client, keys)
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
                self._render_notices(claimed, report, republish=True)
        response: Any = self.client.xreadgroup(
            RENDER_GROUP, self.name, {self.keys.changes: ">"}, count=BATCH, block=block_ms
        )
        for _stream, entries in response or []:
            self._render_notices(entries, report, republish=False)
        self.client.set(
            self.keys.heartbeat(f"renderer:{self.name}"), int(time.time()), ex=HEARTBEAT_TTL
        )
        self.last_step = time.monotonic()
        return report

    def _claim_abandoned(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        result = self.client.xautoclaim(
            self.keys.changes, RENDER_GROUP, self.name, CLAIM_IDLE_MS, "0-0", count=BATCH
        )
        entries: list[tuple[bytes, dict[bytes, bytes]]] = result[1]
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def _render_notices(self, entries: list[Any], report: RoundReport, republish: bool) -> None:
        report.notices += len(entries)
        metrics.NOTICES.labels("claimed" if republish else "new").inc(len(entries))
        symbols = dict.fromkeys(fields[b"symbol"].decode() for _id, fields in entries)
        for symbol in symbols:
            seq = self.render(symbol, republish=republish)
            if seq is not None:
                report.rendered[symbol] = seq
        ids = [entry_id for entry_id, _fields in entries]
        if ids:
            self.client.xack(self.keys.changes, RENDER_GROUP, *ids)

    def render(self, symbol: str, republish: bool = False) -> int | None:
        """Render the symbol's current bars; publish if this render is the newest.

        ``republish`` also publishes a render whose seq is already stored: the notice
        was claimed from a renderer that may have died between storing and publishing.
        """
        started = time.perf_counter()
        window = self.snapshots.read_window(symbol)
        if not window.bars:
            return None  # dropped, or not fetched yet
        style = style_of(window.bars)  # once: the figure, the snapshot and the delta use it
        figure = build_figure(symbol, window.bars, style)
        figure_json = orjson.dumps(figure)
        # The same bytes orjson.dumps({"symbol", "seq", "figure"}) gives, without
        # encoding the figure twice.
        payload_json = b'{"symbol":%b,"seq":%d,"figure":%b}' % (
            orjson.dumps(symbol),
            window.version,
            figure_json,
        )
        outcome = self.snapshots.store(symbol, window.version, payload_json, style)
        if outcome == OLDER or (outcome == SAME and not republish):
            return None
        assert outcome in (STORED, SAME)
        delta = build_delta(symbol, window, style)
        delta_json = None if delta is None else orjson.dumps(delta)
        metrics.RENDER_SECONDS.observe(time.perf_counter() - started)
        render = Render(symbol, payload_json, figure_json, delta_json)
        self.publisher.publish(render, self.publisher.watched([symbol]))
        metrics.RENDERS.inc()
        metrics.PAYLOAD_BYTES.labels("figure").observe(len(payload_json))
        if delta_json is not None:
            metrics.PAYLOAD_BYTES.labels("delta").observe(len(delta_json))
        if window.as_of is not None:
            metrics.LAG.observe(max(time.time() - window.as_of, 0.0))
        log.info(
            "rendered",
            extra={
                "symbol": symbol,
                "seq": window.version,
                "bars": len(window.bars),
                "bytes": len(payload_json),
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return window.version

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step()
                    backoff = 0.5
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning(
                    "redis unavailable, retrying", extra={"error": str(exc), "retry_in": backoff}
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group lost (Redis restarted empty?), recreating")
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
