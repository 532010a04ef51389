"""``rtplot up``: the whole pipeline on one machine, as child processes.

Uses the Redis at RTPLOT_REDIS_URL, or, if none answers there and ``redis-server`` is
on PATH, a private one on a free port that lives and dies with this command.
"""

import os
import shutil
import signal
import sys
import time
from types import FrameType

from common.settings import Settings
from rtplot.processes import ProcessFailed, RedisServer, Service, redis_answers, terminate

SERVICES = ("worker", "beat", "renderer", "gateway")  # started in this order
NO_REDIS = """\
rtplot up: no Redis answers at {url}, and redis-server is not on PATH to start one.
  Either install Redis (Debian/Ubuntu: sudo apt-get install redis-server;
  macOS: brew install redis) and run `rtplot up` again,
  or point RTPLOT_REDIS_URL at a Redis you have, e.g.
  RTPLOT_REDIS_URL=redis://my-redis:6379/0 rtplot up"""


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


def up(settings: Settings) -> int:
    private: RedisServer | None = None
    env = dict(os.environ)  # the user's own RTPLOT_* settings are the children's
    if not redis_answers(settings.redis_url):
        executable = shutil.which("redis-server")
        if executable is None:
            print(NO_REDIS.format(url=settings.redis_url), file=sys.stderr)
            return 1
        private = RedisServer(executable=executable).start()  # its data goes with it
        env["RTPLOT_REDIS_URL"] = private.url
        print(
            f"rtplot up: no Redis at {settings.redis_url}; started a private one at "
            f"{private.url} (its data is discarded on exit)",
            flush=True,
        )
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    page = f"http://{host}:{settings.port}/"
    children: list[Service] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        for service in SERVICES:
            # Their output is ours: the user sees every service's log in one terminal.
            children.append(Service(service, [service], env))
        if _healthy(children[-1], page + "healthz"):
            print(
                f"\nrtplot is up ({settings.source} data): open {page}\nPress Ctrl-C to stop.\n",
                flush=True,
            )
        return _supervise(children)
    except _Stop:
        print("\nrtplot up: stopping...", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        terminate(child.process for child in reversed(children))
        if private is not None:
            private.cleanup()


def _healthy(gateway: Service, url: str) -> bool:
    """A gateway that never answers is not fatal here: ``_supervise`` reports one that
    exits, and one that only hangs is left for the user to see."""
    try:
        gateway.wait_healthy(url)
    except ProcessFailed:
        return False
    return True


def _supervise(children: list[Service]) -> int:
    """Wait until a child exits on its own: then the pipeline is broken, stop it all."""
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                print(
                    f"rtplot up: the {child.name} exited with status {code}; stopping",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        time.sleep(0.5)
