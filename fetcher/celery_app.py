"""The Celery app: a beat that ticks every RTPLOT_FETCH_INTERVAL s, a worker that fetches.

celery-redbeat keeps the schedule in Redis behind a lock, so a second beat waits
instead of doubling the ticks. A tick's task expires when the next tick is due, so a
backed-up queue never replays old ticks, and the worker acks late so a task lost with
its worker is delivered again.
"""

from celery import Celery

from common.keys import Keys
from common.settings import Settings

FETCH_TASK = "fetcher.tasks.fetch_bars"
QUEUE = "rtplot.fetch"


def make_app(settings: Settings) -> Celery:
    keys = Keys(settings.key_prefix)
    interval = settings.fetch_interval
    # The beat wakes at least this often, and its lock outlives a few missed wake-ups,
    # so a standby beat takes over within seconds of the active one dying.
    loop = min(interval, 5.0)
    app = Celery("rtplot", broker=settings.redis_url, include=["fetcher.tasks"])
    app.conf.update(
        broker_transport_options={"global_keyprefix": keys.broker_prefix},
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        beat_scheduler="redbeat.RedBeatScheduler",
        beat_max_loop_interval=loop,
        redbeat_redis_url=settings.redis_url,
        redbeat_key_prefix=keys.beat_prefix,
        # redbeat retries its Redis calls this long (at most a second apart, see
        # fetcher.internals) before giving up; fetcher.beat then starts the beat again.
        redbeat_redis_options={"retry_period": 300},
        redbeat_lock_timeout=max(5 * loop, 10.0),
        beat_schedule={
            "fetch-bars": {
                "task": FETCH_TASK,
                "schedule": interval,
                "options": {"expires": interval},
            }
        },
    )
    return app


app = make_app(Settings.from_env())
