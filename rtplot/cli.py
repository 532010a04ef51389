"""``rtplot beat | worker | renderer | stream | gateway | up``."""

import argparse
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from common.logs import configure_logging
from common.settings import Settings, SettingsError

# Below DEBUG, what Celery says at INFO on every tick: the worker's "received" and
# "succeeded" (whole loggers), the beat's "Sending due task" (its other INFO lines, the
# start and the lock taken or lost, stay).
CHATTY_LOGGERS = ("celery.worker.strategy", "celery.app.trace")
CHATTY_MESSAGES = {"celery.beat": ("Scheduler: Sending due task",)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtplot", description="Live stock charts over a Redis pipeline."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("beat", help="the fetch schedule (celery-redbeat; safe to run twice)")
    worker = sub.add_parser("worker", help="the Celery worker that fetches and stores bars")
    worker.add_argument(
        "celery_args",
        nargs=argparse.REMAINDER,
        help="extra arguments for `celery worker`, after --",
    )
    sub.add_parser("renderer", help="renders each changed symbol and publishes it")
    sub.add_parser(
        "stream", help="Yahoo's live trades into the minute in progress (RTPLOT_STREAM=yahoo)"
    )
    gateway = sub.add_parser("gateway", help="the Socket.IO server browsers connect to")
    gateway.add_argument(
        "--mode",
        choices=("asyncio", "eventlet"),
        default="asyncio",
        help="asyncio (uvicorn, default) or eventlet (its WSGI server)",
    )
    sub.add_parser("up", help="run the whole pipeline on this machine")
    check = sub.add_parser("healthcheck", help="exit 0 if a service's /healthz says ok")
    check.add_argument("url", help="e.g. http://127.0.0.1:9101/healthz")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "healthcheck":
        return healthcheck(args.url)
    if args.command == "gateway" and args.mode == "eventlet":
        # Must patch before redis, socket and threading are imported anywhere.
        import eventlet

        eventlet.monkey_patch()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"rtplot {args.command}: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.command, settings.log_level, settings.log_json)
    if settings.log_level != "DEBUG":
        quiet_celery()
    try:
        return _run(args, settings)
    except SettingsError as exc:  # found by a service as it starts (RTPLOT_JWT_KEY's file)
        print(f"rtplot {args.command}: bad setting: {exc}", file=sys.stderr)
        return 2


def quiet_celery() -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, starts in CHATTY_MESSAGES.items():
        logging.getLogger(name).addFilter(_Drop(starts))


class _Drop(logging.Filter):
    """Drops a logger's records below WARNING whose message starts with one of these."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not str(record.msg).startswith(self.starts)


def healthcheck(url: str) -> int:
    """For container HEALTHCHECKs: no curl in the image, and the same on every service."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            print(response.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:  # 503: the body says what is wrong
        print(exc.read().decode(errors="replace"), file=sys.stderr)
    except OSError as exc:
        print(f"rtplot healthcheck: {url}: {exc}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "beat":
        from fetcher.main import run_beat

        return run_beat(settings)
    if args.command == "worker":
        from fetcher.main import run_worker

        return run_worker(settings, [a for a in args.celery_args if a != "--"])
    if args.command == "stream":
        from stream.main import run as run_stream

        return run_stream(settings)
    if args.command == "renderer":
        from renderer.main import run

        run(settings)
    elif args.command == "gateway":
        if args.mode == "eventlet":
            from gateway.eventlet_server import serve as serve_eventlet

            serve_eventlet(settings)
        else:
            from gateway.asgi_server import serve

            serve(settings)
    elif args.command == "up":
        from rtplot.up import up

        return up(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
