"""Where a symbol trades: its exchange's clock and trading session.

The charts run on the exchange's own clock, labelled with its name, and hide the hours
it is closed; the synthetic market can keep these sessions (``RTPLOT_MARKET_HOURS=
exchange``). A source that knows better (yfinance's metadata names the time zone) says
so; otherwise the symbol's Yahoo-style suffix decides, from the table below. Holidays
are not known: a closed weekday shows as a flat stretch, or, with real data, as a gap.
"""

from dataclasses import dataclass, replace
from datetime import datetime, time
from functools import cache
from zoneinfo import ZoneInfo

import orjson


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
