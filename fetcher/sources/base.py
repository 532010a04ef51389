"""The interface every market data source implements."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from common.bars import Bar


@dataclass
class FetchResult:
    # symbol -> bars with t >= the requested since, sorted by t, one per minute.
    # The last bar may be the minute still in progress; it is replaced as it changes.
    bars: dict[str, list[Bar]]
    # symbol -> why the source had nothing usable for it this time (not fatal).
    errors: dict[str, str] = field(default_factory=dict)


class SourceError(Exception):
    """The whole fetch failed; ``kind`` labels it for metrics and back-off."""

    kind = "error"


class RateLimited(SourceError):
    """The source asked us to slow down (HTTP 429 and the like)."""

    kind = "rate_limited"


class Source(Protocol):
    name: str

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        """Fetch bars for every symbol in ``since`` with minute >= since[symbol].

        ``now`` is the wall-clock epoch seconds of this tick. One call per tick for all
        symbols, so a source can batch. Raises SourceError if nothing could be fetched.
        """
        ...
