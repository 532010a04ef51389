"""``rtplot renderer``: run the render loop until SIGTERM or Ctrl-C."""

import logging
import signal
import threading
from types import FrameType

from common.connection import connect
from common.keys import Keys
from common.settings import Settings
from renderer.publish import SocketIOPublisher
from renderer.service import Renderer

log = logging.getLogger("rtplot.renderer")


def run(settings: Settings) -> None:
    keys = Keys(settings.key_prefix)
    renderer = Renderer(
        connect(settings.redis_url),
        keys,
        SocketIOPublisher(settings.redis_url, keys.socketio_channel),
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("renderer started", extra={"consumer": renderer.name})
    renderer.run(stop)
