"""``rtplot beat``: celery beat with celery-redbeat, kept running across Redis outages.

redbeat retries its own Redis calls for ``redbeat_redis_options.retry_period``; an outage
longer than that makes celery beat raise and exit, so this loop starts it again (after
waiting for its lock) instead of leaving the pipeline without ticks until a human notices.
"""

import logging
import time

import redis
from celery import Celery
from kombu.exceptions import OperationalError

log = logging.getLogger("rtplot.beat")

MAX_BACKOFF = 1.0  # seconds between restarts while Redis stays away: ticks resume fast


def run_beat(app: Celery, log_level: str) -> int:
    backoff = 0.2
    first = True
    while True:
        try:
            # Only the first start prints celery's banner.
            app.Beat(loglevel=log_level, quiet=not first).run()
            return 0  # stopped by SIGTERM/SIGINT (celery turns them into SystemExit)
        except (redis.RedisError, OperationalError, OSError) as exc:
            log.warning(
                "beat lost Redis; starting it again", extra={"error": str(exc), "retry_in": backoff}
            )
        first = False
        time.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
