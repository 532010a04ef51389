"""Where the fetcher reaches past the public settings of kombu and celery-redbeat, and
the check that decides whether it may.

Both make the fetcher's recovery from a Redis outage wait a second at most, whatever
the outage's length; left alone, each waits on a timer that grows with the outage:

- kombu's ``Connection.ensure_connection``: Celery's worker reconnects to its broker with
  kombu's default pacing, 2 s growing by 2 s to 30 s between tries, for which Celery has
  no setting. Here, in the worker only, a call that names no pacing starts at 0.2 s and
  grows by 0.2 s to 1 s. Test: tests/test_fetcher_internals.py, against kombu's own
  pacing, on a broker that refuses connections.
- celery-redbeat's ``RetryingConnection.RETRY_MAX_WAIT``: the beat retries its Redis
  calls waiting 1, 2, 4... up to 30 s; here at most 1 s. The beat keeps its lock
  across the outage this way, where a restarted beat would wait for the lock to expire.
- celery-redbeat's ``scheduler.lock`` (set by its ``acquire_distributed_beat_lock``), a
  redis-py ``Lock`` whose token sits in ``lock.local.token``: a beat that raised (a
  failover behind Sentinel) gives its own lock back, so the beat started in its place
  ticks at once instead of waiting for the lock to expire. Test: the same file, against
  the lock redbeat really takes in a real Redis.

Used only with the releases in ``TESTED``; with others, start-up logs one warning and the
libraries' own pacing stays.
"""

import functools
import logging
from typing import Any

from common import versions

log = logging.getLogger("rtplot.fetcher")

TESTED = {"kombu": ("5.7",), "celery-redbeat": ("2.4",)}
PACING = {"interval_start": 0.2, "interval_step": 0.2, "interval_max": 1.0}  # seconds
REDBEAT_MAX_WAIT = 1  # seconds


def usable() -> bool:
    found = versions.untested(TESTED)
    if found:
        log.warning(
            "untested library versions (%s): the fetcher keeps their own reconnect pacing, "
            "so recovery from a long Redis outage may take longer",
            ", ".join(found),
        )
    return not found


def pace_broker_reconnects() -> bool:
    """In the worker: kombu's reconnect pacing, at most a second apart."""
    if not usable():
        return False
    from kombu.connection import Connection

    library = Connection.ensure_connection
    if getattr(library, "rtplot_paced", False):
        return True

    @functools.wraps(library)
    def ensure_connection(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) <= 2 and not PACING.keys() & kwargs.keys():  # no pacing given: ours
            kwargs.update(PACING)
        return library(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    ensure_connection.rtplot_paced = True  # type: ignore[attr-defined]
    Connection.ensure_connection = ensure_connection  # type: ignore[method-assign]
    return True


def held_beat_lock(scheduler: Any) -> tuple[str, bytes] | None:
    """(key, token) of the lock redbeat's ``scheduler`` acquired, or None: none held, or
    untested releases (then a restarted beat waits for the lock to expire, as redbeat's
    own)."""
    if scheduler is None or not usable():
        return None
    lock = getattr(scheduler, "lock", None)
    token = getattr(getattr(lock, "local", None), "token", None)
    return None if lock is None or token is None else (str(lock.name), token)


def pace_redbeat_retries() -> bool:
    """In the beat: redbeat's retries of Redis calls, at most a second apart."""
    if not usable():
        return False
    from redbeat import schedulers

    schedulers.RetryingConnection.RETRY_MAX_WAIT = REDBEAT_MAX_WAIT
    return True
