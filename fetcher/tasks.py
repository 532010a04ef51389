"""The worker's task: one fetch tick."""

import logging
from functools import lru_cache
from typing import Any

import redis

from common.connection import connect
from common.settings import Settings
from fetcher.celery_app import FETCH_TASK, app
from fetcher.health import Progress
from fetcher.sources import make_source
from fetcher.sources.base import Source
from fetcher.tick import run_tick

log = logging.getLogger("rtplot.fetcher")


@lru_cache(maxsize=1)
def _context() -> tuple[Settings, "redis.Redis", Source]:
    # Built once per worker process (see prepare), not at import.
    settings = Settings.from_env()
    source = make_source(settings.source, settings.market_hours)
    return settings, connect(settings.redis_url), source


def prepare() -> None:
    """Build the source as the worker starts: a RTPLOT_SOURCE that cannot be used
    (SourceNotUsable, a SettingsError) stops it with the reason, rather than failing
    every tick in the log."""
    _context()


@app.task(name=FETCH_TASK, acks_late=True)  # type: ignore[untyped-decorator]
def fetch_bars() -> dict[str, Any]:
    settings, client, source = _context()
    report = run_tick(settings, client, source)
    Progress.mark()
    log.debug(  # a line a tick: RTPLOT_LOG_LEVEL=DEBUG; rtplot up sums them up
        "tick",
        extra={
            "symbols": len(report.symbols),
            "changed": len(report.changed),
            "bars_stored": report.bars_stored,
            "skipped": report.skipped,
        },
    )
    return {"changed": report.changed, "skipped": report.skipped}
