"""``rtplot beat`` and ``rtplot worker``: the fetcher's two processes, started."""

from celery.signals import after_task_publish

from common.health import serve_health
from common.settings import Settings


def run_beat(settings: Settings) -> int:
    """The schedule: a tick every RTPLOT_FETCH_INTERVAL s, kept across Redis outages."""
    from fetcher import internals
    from fetcher.beat import run_beat as beat_forever
    from fetcher.celery_app import make_app
    from fetcher.health import beat_check, count_sent_ticks

    internals.pace_redbeat_retries()
    after_task_publish.connect(count_sent_ticks, weak=False)
    port = settings.metrics_port_for("beat")
    serve_health(settings.metrics_host, port, beat_check(settings))
    return beat_forever(make_app(settings), settings.log_level)


def run_worker(settings: Settings, celery_args: list[str]) -> int:
    """The Celery worker that runs the ticks: one at a time (the solo pool), on the
    fetch queue, without the chatter between workers it does not need."""
    from fetcher import internals
    from fetcher.celery_app import QUEUE, make_app
    from fetcher.health import worker_check
    from fetcher.tasks import fetch_task

    app = make_app(settings, fetch_task(settings))
    internals.pace_broker_reconnects()
    port = settings.metrics_port_for("worker")
    serve_health(settings.metrics_host, port, worker_check(settings))
    # Celery's banner only at DEBUG: it is not a log line (see fetcher.beat).
    quiet = [] if settings.log_level == "DEBUG" else ["--quiet"]
    argv = ["worker", "--loglevel", settings.log_level, "--pool", "solo", "--queues", QUEUE]
    app.worker_main([*quiet, *argv, "--without-mingle", "--without-gossip", *celery_args])
    return 0
