"""``rtplot stream``: started."""

import asyncio
import logging
import signal

from common.connection import connect
from common.health import serve_health
from common.settings import Settings
from stream import internals
from stream.service import StreamService

log = logging.getLogger("rtplot.stream")


def run(settings: Settings) -> int:
    if settings.stream is None:
        log.error("RTPLOT_STREAM is off: set RTPLOT_STREAM=yahoo to run rtplot stream")
        return 2
    try:
        internals.check()
    except internals.UnusableProto as exc:
        log.error("cannot decode Yahoo's stream", extra={"error": str(exc)})
        return 2
    service = StreamService(settings, connect(settings.redis_url))
    serve_health(settings.metrics_host, settings.metrics_port_for("stream"), service.health)
    asyncio.run(_until_stopped(service))
    return 0


async def _until_stopped(service: StreamService) -> None:
    task = asyncio.create_task(service.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped")
