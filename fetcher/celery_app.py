"""The Celery app: a beat that ticks every RTPLOT_FETCH_INTERVAL s, a worker that fetches.

Each process makes its app at start from the settings it was given (``make_app``), as
every other service does; nothing is configured at import. The worker's app carries the
fetch task, built then too (fetcher.tasks); the beat's sends it by name.

celery-redbeat keeps the schedule in Redis behind a lock, so a second beat waits
instead of doubling the ticks. A tick's task expires when the next tick is due, so a
backed-up queue never replays old ticks, and the worker acks late so a task lost with
its worker is delivered again.

Behind Redis Sentinel (a ``redis+sentinel://`` RTPLOT_REDIS_URL) both speak it in their
own form: kombu's ``sentinel://host:port;sentinel://...`` with the service as its
``master_name``, redbeat's ``redis-sentinel://`` with the sentinels in its options.
Results are ignored, so no result backend is configured.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlparse

from celery import Celery

from common.connection import is_sentinel, sentinel_options
from common.contract.keys import FETCH_QUEUE, Keys
from common.settings import Settings, sentinel_parts

FETCH_TASK = "fetcher.tasks.fetch_bars"
QUEUE = FETCH_QUEUE  # the contract's name (common.contract.keys)


def make_app(settings: Settings, fetch: Callable[[], Any] | None = None) -> Celery:
    """The app for ``settings``; with ``fetch``, the worker's, which runs it as the fetch
    task."""
    keys = Keys(settings.key_prefix)
    interval = settings.fetch_interval
    # The beat wakes at least this often, and its lock outlives a few missed wake-ups,
    # so a standby beat takes over within seconds of the active one dying.
    loop = min(interval, 5.0)
    app = Celery("rtplot")
    app.conf.update(
        **redis_settings(settings.redis_url, keys),
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        beat_scheduler="redbeat.RedBeatScheduler",
        beat_max_loop_interval=loop,
        redbeat_key_prefix=keys.beat_prefix,
        redbeat_lock_timeout=max(5 * loop, 10.0),
        beat_schedule={
            "fetch-bars": {
                "task": FETCH_TASK,
                "schedule": interval,
                "options": {"expires": interval},
            }
        },
    )
    if fetch is not None:
        app.task(name=FETCH_TASK, acks_late=True)(fetch)
    return app


# redbeat retries its Redis calls this long (at most a second apart, see
# fetcher.internals) before giving up; fetcher.beat then starts the beat again.
REDBEAT_RETRY_PERIOD = 300  # seconds


def redis_settings(url: str, keys: Keys) -> dict[str, Any]:
    """Celery's broker and redbeat's settings for RTPLOT_REDIS_URL."""
    transport: dict[str, Any] = {"global_keyprefix": keys.broker_prefix}
    redbeat: dict[str, Any] = {"retry_period": REDBEAT_RETRY_PERIOD}
    if not is_sentinel(url):
        return {
            "broker_url": url,
            "broker_transport_options": transport,
            "redbeat_redis_url": url,
            "redbeat_redis_options": redbeat,
        }
    parts = sentinel_parts(url)
    userinfo, at, _ = urlparse(url).netloc.rpartition("@")
    credentials = userinfo + at  # as written, quoted: kombu unquotes it
    hosts = [f"{host}:{port}" for host, port in parts.sentinels]
    transport.update(master_name=parts.service, sentinel_kwargs=sentinel_options())
    redbeat.update(
        sentinels=list(parts.sentinels),
        service_name=parts.service,
        db=parts.db,
        socket_timeout=10,  # seconds; redbeat's default is to wait forever
        sentinel_kwargs=sentinel_options(),
    )
    if parts.username:
        redbeat["username"] = unquote(parts.username)
    if parts.password:
        redbeat["password"] = unquote(parts.password)
    return {
        "broker_url": ";".join(f"sentinel://{credentials}{h}/{parts.db}" for h in hosts),
        "broker_transport_options": transport,
        # redbeat takes the sentinels from its options; this URL only picks its Sentinel
        # mode and is shown in the beat's banner (one host, no password), as in its docs.
        "redbeat_redis_url": f"redis-sentinel://{hosts[0]}/{parts.db}",
        "redbeat_redis_options": redbeat,
    }
