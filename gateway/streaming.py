"""/streaming: the symbols the live stream feeds now (common.contract.streaming), for the
page's marks. Each gateway reads them at most once every ``READ_EVERY`` seconds, however
many pages ask; with RTPLOT_STREAM off, never (the list is empty)."""

import time
from typing import Any

from common.contract.streaming import streaming_of, streaming_since
from common.settings import Settings

READ_EVERY = 2.0  # seconds


class StreamingList:
    def __init__(self, settings: Settings) -> None:
        self.on = settings.stream is not None
        self.symbols: list[str] = []
        self._read_at = -READ_EVERY

    def due(self) -> float | None:
        """The oldest stamp to read, if a read is due; None if not."""
        if not self.on or time.monotonic() - self._read_at < READ_EVERY:
            return None
        return streaming_since(time.time())

    def read(self, raw: Any) -> list[str]:
        """What was read: the stamped symbols as Redis sends them (bytes), or None if the
        read failed, and the last list stands."""
        self._read_at = time.monotonic()
        if raw is not None:
            self.symbols = streaming_of(raw)
        return self.symbols
