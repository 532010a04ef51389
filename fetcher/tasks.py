"""The worker's task: one fetch tick, with the source and the Redis client it needs
built once, as the worker starts."""

import logging
from collections.abc import Callable
from typing import Any

from common.connection import connect
from common.settings import Settings
from fetcher.health import Progress
from fetcher.history import HistoryFiller
from fetcher.sources import make_source
from fetcher.tick import run_tick

log = logging.getLogger("rtplot.fetcher")


def fetch_task(settings: Settings) -> Callable[[], dict[str, Any]]:
    """The fetch task of a worker with ``settings``. The source is built now: one that
    cannot be used (SourceNotUsable, a SettingsError) stops the worker with the reason,
    rather than failing every tick in the log."""
    source = make_source(settings.source, settings.market_hours)
    client = connect(settings.redis_url)
    history = HistoryFiller(settings, client, source)

    def fetch_bars() -> dict[str, Any]:
        report = run_tick(settings, client, source, history=history)
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

    return fetch_bars
