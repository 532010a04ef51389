"""``rtplot renderer``: run the render loop until SIGTERM or Ctrl-C."""

import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

import redis

from common.connection import connect
from common.contract.keys import Keys
from common.health import HealthCheck, serve_health
from common.settings import Settings
from renderer.publish import RoomPublisher
from renderer.service import Renderer

log = logging.getLogger("rtplot.renderer")


LOOP_SILENCE = 15.0  # seconds; a round blocks for at most 1 s when there is nothing to do


def health_check(renderer: Renderer) -> HealthCheck:
    def check() -> dict[str, Any]:
        try:
            redis_ok = bool(renderer.client.ping())
        except (redis.RedisError, OSError):
            redis_ok = False
        silence = time.monotonic() - renderer.last_step
        looping = silence < LOOP_SILENCE
        return {
            "ok": redis_ok and looping,
            "redis": redis_ok,
            "looping": looping,
            "last_round_age": round(silence, 1),
            "consumer": renderer.name,
        }

    return check


def run(settings: Settings) -> None:
    keys = Keys(settings.key_prefix)
    client = connect(settings.redis_url)
    publisher = RoomPublisher(client, keys, settings.full_figure_every)
    renderer = Renderer(
        client,
        keys,
        publisher,
        snapshot_every=settings.snapshot_every,
        watch_ttl=settings.watch_ttl,
        resume_length=settings.resume_length,
        view_bars=settings.view_bars,
        history_kept=bool(settings.history_days),
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve_health(
        settings.metrics_host, settings.metrics_port_for("renderer"), health_check(renderer)
    )
    log.info("renderer started", extra={"consumer": renderer.name})
    renderer.run(stop)
