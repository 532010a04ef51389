"""Where a symbol trades: its exchange's clock and trading session.

The charts run on the exchange's own clock, labelled with its name, and hide the hours
it is closed; the synthetic market can keep these sessions (``RTPLOT_MARKET_HOURS=
exchange``). A source that knows better (yfinance's metadata names the time zone) says
so; otherwise the symbol's Yahoo-style suffix decides, from the table below. Holidays
are not known: a closed weekday shows as a flat stretch, or, with real data, as a gap.
"""

from dataclasses import dataclass, replace
from datetime import datetime, time
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson

Seconds = npt.NDArray[np.int64]
DAY = 86_400


@dataclass(frozen=True)
class Market:
    name: str  # the clock's name on the chart's axis: "New York"
    tz: str  # IANA time zone: "America/New_York"
    opens: time | None = None  # local time the session opens; None: around the clock
    closes: time | None = None
    weekdays: bool = True  # closed on Saturday and Sunday

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.tz)

    def is_open(self, epoch_seconds: float) -> bool:
        local = datetime.fromtimestamp(epoch_seconds, self.zone)
        if self.weekdays and local.weekday() >= 5:
            return False
        if self.opens is None or self.closes is None:
            return True
        return self.opens <= local.time() < self.closes

    def utc_offset(self, epoch_seconds: float) -> int:
        """Seconds the exchange's clock is ahead of UTC at that moment (DST included)."""
        offset = datetime.fromtimestamp(epoch_seconds, self.zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def utc_offsets(self, epoch_seconds: npt.ArrayLike) -> Seconds:
        """``utc_offset`` of many moments at once, in ascending order or not: the zone's
        transitions within their span are found once (and cached), not per moment."""
        t = np.asarray(epoch_seconds, dtype=np.int64)
        if not t.size:
            return np.zeros(0, dtype=np.int64)
        lo, hi = int(t.min()), int(t.max())
        found = _changes_between(self.tz, lo, hi)
        if not found:  # the usual case: no change of clocks in the span
            return np.full(t.shape, _offset(self.tz, lo), dtype=np.int64)
        at = np.array([change[0] for change in found], dtype=np.int64)
        offsets = np.array([_offset(self.tz, lo)] + [change[1] for change in found], dtype=np.int64)
        return offsets[np.searchsorted(at, t, side="right")]

    def local_seconds(self, epoch_seconds: npt.ArrayLike) -> Seconds:
        """The exchange's wall clock at each moment, as seconds since 1970-01-01 on that
        clock: what a chart's date axis shows, which knows no time zones."""
        t = np.asarray(epoch_seconds, dtype=np.int64)
        return t + self.utc_offsets(t)

    def open_mask(self, epoch_seconds: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """``is_open`` of many moments at once."""
        local = self.local_seconds(epoch_seconds)
        is_open = np.ones(local.shape, dtype=bool)
        if self.weekdays:
            is_open &= (local // DAY + 3) % 7 < 5  # 1970-01-01 was a Thursday
        if self.opens is not None and self.closes is not None:
            of_day = local % DAY
            opens, closes = _seconds(self.opens), _seconds(self.closes)
            if opens <= closes:
                is_open &= (of_day >= opens) & (of_day < closes)
            else:  # a session across midnight
                is_open &= (of_day >= opens) | (of_day < closes)
        return is_open

    def last_changes(self, epoch_seconds: npt.ArrayLike) -> Seconds:
        """The latest change of clocks (its first second on the new clock) at or before
        each moment, looked for in the year before it; 0 where there was none."""
        t = np.asarray(epoch_seconds, dtype=np.int64)
        if not t.size:
            return np.zeros(0, dtype=np.int64)
        found_in = _changes_between(self.tz, int(t.min()) - _YEAR, int(t.max()))
        at = np.array([change[0] for change in found_in] or [0], dtype=np.int64)
        found = np.searchsorted(at, t, side="right") - 1
        return np.where(found >= 0, at[np.maximum(found, 0)], 0)

    def repeated(self, epoch_seconds: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """The moments in the hour after the clocks go back, whose wall-clock times the
        hour before had already shown: a chart on this clock would draw them twice over
        the same stretch of axis."""
        t = np.asarray(epoch_seconds, dtype=np.int64)
        return self.utc_offsets(t) < self.utc_offsets(t - 3600)

    @property
    def has_sessions(self) -> bool:
        """Whether it closes at all: only then has a chart hours to hide."""
        return self.weekdays or (self.opens is not None and self.closes is not None)

    @property
    def session_origin(self) -> int:
        """Seconds after local midnight that bars are counted from: the session's open
        (hourly bars from 09:30, as exchanges and charting sites draw them), or midnight
        for a market without one."""
        return 0 if self.opens is None else _seconds(self.opens)

    def rangebreaks(self) -> list[dict[str, object]]:
        """Plotly's way to hide the closed hours and weekends of a local-time axis."""
        breaks: list[dict[str, object]] = []
        if self.weekdays:
            breaks.append({"bounds": ["sat", "mon"]})
        if self.opens is not None and self.closes is not None:
            breaks.append({"pattern": "hour", "bounds": [_hours(self.closes), _hours(self.opens)]})
        return breaks

    def always_open(self) -> "Market":
        """The same clock, trading around the clock every day (the synthetic default)."""
        return replace(self, opens=None, closes=None, weekdays=False)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "name": self.name,
                "tz": self.tz,
                "opens": None if self.opens is None else self.opens.isoformat("minutes"),
                "closes": None if self.closes is None else self.closes.isoformat("minutes"),
                "weekdays": self.weekdays,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> "Market":
        data = orjson.loads(raw)
        return cls(
            name=data["name"],
            tz=data["tz"],
            opens=None if data["opens"] is None else time.fromisoformat(data["opens"]),
            closes=None if data["closes"] is None else time.fromisoformat(data["closes"]),
            weekdays=bool(data["weekdays"]),
        )


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _hours(at: time) -> float:
    return at.hour + at.minute / 60


def _seconds(at: time) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


# Zone transitions are looked for in spans of this length: two in one span never happen
# (they are months apart, or weeks in the strangest zones).
_CHUNK = 6 * 3600
# ... and remembered a year of spans at a time, so decades cost a lookup per year.
_YEAR = 1460 * _CHUNK


@lru_cache(maxsize=65_536)
def _offset(tz: str, at: int) -> int:
    offset = datetime.fromtimestamp(at, _zone(tz)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _changes_between(tz: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The zone's transitions in (lo, hi], in order."""
    return [
        change
        for year in range(lo // _YEAR, hi // _YEAR + 1)
        for change in _year_changes(tz, year)
        if lo < change[0] <= hi
    ]


@lru_cache(maxsize=4096)
def _year_changes(tz: str, year: int) -> tuple[tuple[int, int], ...]:
    """The zone's transitions in (year * _YEAR, (year + 1) * _YEAR]."""
    start = year * _YEAR
    return tuple(
        change for chunk in range(start, start + _YEAR, _CHUNK) for change in _changes(tz, chunk)
    )


@lru_cache(maxsize=16_384)
def _changes(tz: str, chunk: int) -> tuple[tuple[int, int], ...]:
    """The zone's transitions in [chunk, chunk + _CHUNK]: (first second of the new
    offset, the new offset), found by bisection."""
    before, after = _offset(tz, chunk), _offset(tz, chunk + _CHUNK)
    if before == after:
        return ()
    lo, hi = chunk, chunk + _CHUNK  # before at lo, something else at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(tz, mid) == before:
            lo = mid
        else:
            hi = mid
    return ((hi, _offset(tz, hi)),)


def _session(name: str, tz: str, opens: str, closes: str) -> Market:
    return Market(name, tz, time.fromisoformat(opens), time.fromisoformat(closes))


NEW_YORK = _session("New York", "America/New_York", "09:30", "16:00")
# Yahoo suffix -> market. Listed by the suffixes people watch most; others fall back on
# New York, as Yahoo's own symbols without a suffix do.
BY_SUFFIX: dict[str, Market] = {
    ".NS": _session("Kolkata", "Asia/Kolkata", "09:15", "15:30"),
    ".BO": _session("Kolkata", "Asia/Kolkata", "09:15", "15:30"),
    ".L": _session("London", "Europe/London", "08:00", "16:30"),
    ".DE": _session("Frankfurt", "Europe/Berlin", "09:00", "17:30"),
    ".F": _session("Frankfurt", "Europe/Berlin", "08:00", "20:00"),
    ".PA": _session("Paris", "Europe/Paris", "09:00", "17:30"),
    ".AS": _session("Amsterdam", "Europe/Amsterdam", "09:00", "17:30"),
    ".MI": _session("Milan", "Europe/Rome", "09:00", "17:30"),
    ".SW": _session("Zurich", "Europe/Zurich", "09:00", "17:30"),
    ".T": _session("Tokyo", "Asia/Tokyo", "09:00", "15:30"),
    ".HK": _session("Hong Kong", "Asia/Hong_Kong", "09:30", "16:00"),
    ".SS": _session("Shanghai", "Asia/Shanghai", "09:30", "15:00"),
    ".SZ": _session("Shenzhen", "Asia/Shanghai", "09:30", "15:00"),
    ".KS": _session("Seoul", "Asia/Seoul", "09:00", "15:30"),
    ".AX": _session("Sydney", "Australia/Sydney", "10:00", "16:00"),
    ".TO": _session("Toronto", "America/Toronto", "09:30", "16:00"),
    ".SA": _session("São Paulo", "America/Sao_Paulo", "10:00", "17:00"),
}
FX = Market("New York", "America/New_York", weekdays=True)  # =X: around the clock, weekdays
FUTURES = Market("New York", "America/New_York", weekdays=True)  # =F: likewise
CRYPTO = Market("UTC", "UTC", weekdays=False)  # -USD and the like: never closes


UTC = Market("UTC", "UTC", weekdays=False)  # a clock for data that says nothing of its own


def clock_name(tz: str) -> str:
    """What a chart calls an IANA zone: the table's name for it, else its city."""
    for market in (NEW_YORK, *BY_SUFFIX.values(), CRYPTO):
        if market.tz == tz:
            return market.name
    return tz.rsplit("/", 1)[-1].replace("_", " ")


def market_for(symbol: str) -> Market:
    """The market a Yahoo-style symbol trades on, by its suffix."""
    if symbol.endswith("=X"):
        return FX
    if symbol.endswith("=F"):
        return FUTURES
    if "-" in symbol and symbol.rsplit("-", 1)[1] in ("USD", "USDT", "EUR", "BTC"):
        return CRYPTO
    dot = symbol.rfind(".")
    if dot > 0:
        return BY_SUFFIX.get(symbol[dot:], NEW_YORK)
    return NEW_YORK


def local_day_start(market: Market, epoch_seconds: float) -> float:
    """The epoch second the exchange's local day containing ``epoch_seconds`` began."""
    local = datetime.fromtimestamp(epoch_seconds, market.zone)
    midnight = datetime.combine(local.date(), time(0), market.zone)
    return midnight.timestamp()
