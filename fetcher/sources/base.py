"""The interface every market data source implements, built in or your own.

A source is any object with a ``name`` and a ``fetch(since, now)`` method returning a
``FetchResult`` (docs/sources.md). The worker calls ``fetch`` once per tick for every
tracked symbol, stores what changed and draws nothing itself, so a source only reads
prices: no Redis, no threads, no sleeping. What it returns is checked before anything
is stored (fetcher.tick): bars that are not ``Bar``s, not sane, in the future or for
symbols it was not asked about are dropped and counted; an exception of any kind is a
failed fetch, and the source is left alone for a while (doubling back-off), exactly as
for the built-in ones.

A source may also serve bars at a coarser resolution over a range of time
(``HistorySource``: ``history(resolution, spans, now)``), so the store can reach further
back than the minutes go (fetcher.history asks for it). One that does not is found out
by ``serves_history``; its coarse bars are rolled up from the stored minutes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeGuard, runtime_checkable

from common.bars import Bar
from common.markets import Market
from common.resolutions import Columns, Resolution


@dataclass
class FetchResult:
    # symbol -> bars with t >= the requested since, sorted by t, one per minute (from
    # history(): one per bar of the resolution asked, t its start). The last bar may be
    # the one still in progress; it is replaced as it changes.
    bars: dict[str, list[Bar]]
    # symbol -> why the source had nothing usable for it this time (not fatal).
    errors: dict[str, str] = field(default_factory=dict)
    # symbol -> where it trades (its clock and session, common.markets), if the source
    # knows; charts then show its time zone and hide its closed hours. A symbol left out
    # keeps what was said before, or else its suffix's clock with no hours hidden.
    markets: dict[str, Market] = field(default_factory=dict)
    # From history() only: a symbol's bars as columns (common.resolutions.Columns),
    # instead of in ``bars``; years of bars without a Bar each.
    columns: dict[str, Columns] = field(default_factory=dict)
    # From history() only: symbol -> the start of the bar of the newest split in what
    # came back (every price before it scaled by the ratio). On a refresh, a split newer
    # than the newest the stored bars reflect means they no longer match:
    # fetcher.history stores the symbol again, in a new epoch.
    restated: dict[str, int] = field(default_factory=dict)


class SourceError(Exception):
    """The whole fetch failed; ``kind`` labels it for metrics and back-off."""

    kind = "error"


class RateLimited(SourceError):
    """The source asked us to slow down (HTTP 429 and the like)."""

    kind = "rate_limited"


@runtime_checkable
class Source(Protocol):
    name: str  # shown in logs

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        """Fetch bars for every symbol in ``since`` with minute >= since[symbol].

        ``now`` is the wall-clock epoch seconds of this tick. One call per tick for all
        symbols, so a source can batch. Raises SourceError if nothing could be fetched
        (RateLimited when asked to slow down); any other exception counts the same.
        """
        ...


@runtime_checkable
class HistorySource(Protocol):
    """A source that can serve bars at a resolution over a range (docs/sources.md)."""

    name: str

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        """Bars of ``resolution`` for every symbol in ``spans``: symbol -> (start, end),
        epoch seconds, the bars wanted being those whose start ``t`` has
        ``start <= t < end``, sorted, none after ``now`` (the one in progress included).
        A source may give fewer (not that far back); errors as for ``fetch``.
        """
        ...


def serves_history(source: object) -> TypeGuard[HistorySource]:
    """Whether ``source`` has ``history``; if not, its coarse bars are to be rolled up from
    its minutes (common.resolutions.rollup)."""
    return isinstance(source, HistorySource) and callable(getattr(source, "history", None))
