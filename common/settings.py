"""Settings: read once at start from the environment (prefix ``RTPLOT_``).

Every value is cast strictly; a bad one raises ``SettingsError`` naming the variable,
and the service stops with that message. ``Settings.from_env`` takes the mapping to
read, so tests pass a dict instead of patching ``os.environ``.
"""

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from common.contract.keys import DEFAULT_PREFIX
from common.resolutions import COARSE, Resolution
from common.symbols import InvalidSymbol, normalize_symbol

T = TypeVar("T")

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "TSLA", "BRK-B")
# Where each background service serves /metrics and /healthz unless RTPLOT_METRICS_PORT
# says otherwise (distinct, so `rtplot up` runs them all on one machine).
METRICS_PORTS = {"worker": 9101, "beat": 9102, "renderer": 9103, "stream": 9104}
STREAMS = ("yahoo",)  # RTPLOT_STREAM's values besides "off"
YAHOO_STREAMER = "wss://streamer.finance.yahoo.com/?version=2"
# A live synthetic market changes every second; Yahoo would rate-limit that.
DEFAULT_INTERVAL = {"synthetic": 1.0, "csv": 1.0, "yfinance": 60.0, "plugin": 60.0}
# Days of history kept at each coarser resolution: what Yahoo serves at 5m and 1h, and
# twenty years of days (RTPLOT_HISTORY_DAYS; docs/operations.md has the bytes).
DEFAULT_HISTORY_DAYS = ((Resolution.M5, 60), (Resolution.H1, 730), (Resolution.D1, 7300))


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "synthetic" | "yfinance" | "csv" | "plugin"
    path: Path | None = None  # the file, for "csv"
    target: str | None = None  # "module.path:ClassName" or an entry point name, for "plugin"

    def __str__(self) -> str:
        if self.kind == "csv":
            return f"csv:{self.path}"
        return self.target if self.kind == "plugin" and self.target else self.kind


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    source: SourceSpec = SourceSpec("synthetic")
    market_hours: str = "always"  # the synthetic market: "always", or "exchange" sessions
    fetch_interval: float = 1.0  # seconds between beat ticks
    host: str = "127.0.0.1"
    port: int = 8000
    window_minutes: int = 7 * 24 * 60  # 1-minute bars kept per symbol
    # Days of coarser bars kept per symbol (its views' past), by resolution.
    history_days: tuple[tuple[Resolution, int], ...] = DEFAULT_HISTORY_DAYS
    history_refresh: float = 6 * 3600.0  # seconds before a symbol's history is asked again
    view_bars: int = 1_500  # bars a chart holds (its newest), the article's view too
    max_symbols: int = 200  # configured + subscribed: what one renderer keeps up with
    watch_ttl: float = 600.0  # seconds an unconfigured, unwatched symbol stays tracked
    key_prefix: str = DEFAULT_PREFIX
    log_level: str = "INFO"
    log_json: bool = False
    # -- the gateway's limits ---------------------------------------------------------
    allowed_origins: tuple[str, ...] = ()  # browser origins admitted; () = same origin
    auth_token: str | None = None  # if set, clients must present it to connect
    jwt_key: str | None = None  # an HS256 secret, or a PEM public key's path: JWTs
    jwt_audience: str | None = None  # the `aud` a JWT must name, if set
    jwt_issuer: str | None = None  # the `iss` a JWT must name, if set
    rate_limit: float = 20.0  # client events per second per connection, on average
    rate_burst: float = 40.0  # ... and at once
    max_subscriptions: int = 50  # symbols one connection may subscribe to
    max_views_per_symbol: int = 20  # distinct views of one symbol watched (default not counted)
    max_views: int = 200  # distinct views watched in all: each is rendered on every change
    max_message_bytes: int = 65_536  # largest frame a client may send
    max_queued: int = 100  # updates waiting for a slow client before it is dropped
    ping_interval: float = 25.0  # seconds between the gateway's pings of each client
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in containers, so Prometheus can scrape
    metrics_port: int | None = None  # None: the service's own default (METRICS_PORTS)
    fast_path: bool = True  # the gateway's fenced library internals, where tested
    # -- the renderer -----------------------------------------------------------------
    snapshot_every: float = 5.0  # seconds between whole figures stored per symbol
    full_figure_every: float = 0.0  # seconds between whole figures sent to a room
    resume_seconds: float = 300.0  # how long a page may be away and still resume
    drain_seconds: float = 4.0  # a gateway told to stop closes its clients over this long
    # -- the live stream (rtplot stream) ------------------------------------------------
    stream: str | None = None  # "yahoo": Yahoo's live trades on top of the yfinance poll
    stream_url: str = YAHOO_STREAMER  # the streamer's address (tests, proxies)
    stream_write_every: float = 0.2  # seconds between a streamed symbol's writes, at most

    @property
    def resume_length(self) -> int:
        """Renders of a view its delta log keeps: one a tick for ``resume_seconds``, or
        with the live stream one a write, which come up to every ``stream_write_every``
        (0: none, and no client resumes)."""
        every = self.fetch_interval
        if self.stream is not None:
            every = min(every, self.stream_write_every)
        return math.ceil(self.resume_seconds / every)

    def metrics_port_for(self, service: str) -> int:
        return METRICS_PORTS[service] if self.metrics_port is None else self.metrics_port

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        read = _Reader(env)
        source = read("RTPLOT_SOURCE", "synthetic", _source)
        interval_default = str(DEFAULT_INTERVAL[source.kind])
        settings = cls(
            redis_url=read("RTPLOT_REDIS_URL", cls.redis_url, _redis_url),
            symbols=read("RTPLOT_SYMBOLS", ",".join(DEFAULT_SYMBOLS), _symbols),
            source=source,
            market_hours=read("RTPLOT_MARKET_HOURS", cls.market_hours, _market_hours),
            fetch_interval=read("RTPLOT_FETCH_INTERVAL", interval_default, _positive(float)),
            host=read("RTPLOT_HOST", cls.host, _non_empty),
            port=read("RTPLOT_PORT", str(cls.port), _port),
            window_minutes=read("RTPLOT_WINDOW_MINUTES", str(cls.window_minutes), _positive(int)),
            history_days=read("RTPLOT_HISTORY_DAYS", _days_text(DEFAULT_HISTORY_DAYS), _days),
            history_refresh=read(
                "RTPLOT_HISTORY_REFRESH", str(cls.history_refresh), _positive(float)
            ),
            view_bars=read("RTPLOT_VIEW_BARS", str(cls.view_bars), _at_least(50)),
            max_symbols=read("RTPLOT_MAX_SYMBOLS", str(cls.max_symbols), _positive(int)),
            watch_ttl=read("RTPLOT_WATCH_TTL", str(cls.watch_ttl), _positive(float)),
            key_prefix=read("RTPLOT_KEY_PREFIX", cls.key_prefix, _non_empty),
            log_level=read("RTPLOT_LOG_LEVEL", cls.log_level, _log_level),
            log_json=read("RTPLOT_LOG_JSON", "false", _bool),
            allowed_origins=read("RTPLOT_ALLOWED_ORIGINS", "", _origins),
            auth_token=read("RTPLOT_AUTH_TOKEN", "", _optional),
            jwt_key=read("RTPLOT_JWT_KEY", "", _optional),
            jwt_audience=read("RTPLOT_JWT_AUDIENCE", "", _optional),
            jwt_issuer=read("RTPLOT_JWT_ISSUER", "", _optional),
            rate_limit=read("RTPLOT_RATE_LIMIT", str(cls.rate_limit), _positive(float)),
            rate_burst=read("RTPLOT_RATE_BURST", str(cls.rate_burst), _at_least_one),
            max_subscriptions=read(
                "RTPLOT_MAX_SUBSCRIPTIONS", str(cls.max_subscriptions), _positive(int)
            ),
            max_views_per_symbol=read(
                "RTPLOT_MAX_VIEWS_PER_SYMBOL", str(cls.max_views_per_symbol), _positive(int)
            ),
            max_views=read("RTPLOT_MAX_VIEWS", str(cls.max_views), _positive(int)),
            max_message_bytes=read(
                "RTPLOT_MAX_MESSAGE_BYTES", str(cls.max_message_bytes), _positive(int)
            ),
            max_queued=read("RTPLOT_MAX_QUEUED", str(cls.max_queued), _positive(int)),
            ping_interval=read("RTPLOT_PING_INTERVAL", str(cls.ping_interval), _positive(float)),
            metrics_host=read("RTPLOT_METRICS_HOST", cls.metrics_host, _non_empty),
            metrics_port=read("RTPLOT_METRICS_PORT", "", _optional_port),
            fast_path=read("RTPLOT_FAST_PATH", "true", _bool),
            snapshot_every=read("RTPLOT_SNAPSHOT_EVERY", str(cls.snapshot_every), _non_negative),
            full_figure_every=read(
                "RTPLOT_FULL_FIGURE_EVERY", str(cls.full_figure_every), _non_negative
            ),
            resume_seconds=read("RTPLOT_RESUME_SECONDS", str(cls.resume_seconds), _non_negative),
            drain_seconds=read("RTPLOT_DRAIN_SECONDS", str(cls.drain_seconds), _non_negative),
            stream=read("RTPLOT_STREAM", "off", _stream),
            stream_url=read("RTPLOT_STREAM_URL", cls.stream_url, _websocket_url),
            stream_write_every=read(
                "RTPLOT_STREAM_WRITE_EVERY", str(cls.stream_write_every), _positive(float)
            ),
        )
        if settings.stream is not None and settings.source.kind != "yfinance":
            raise SettingsError(
                f"RTPLOT_STREAM={settings.stream} streams Yahoo's trades on top of "
                f"RTPLOT_SOURCE=yfinance, not {settings.source}: set RTPLOT_SOURCE=yfinance, "
                "or RTPLOT_STREAM=off"
            )
        if len(settings.symbols) > settings.max_symbols:
            raise SettingsError(
                f"RTPLOT_SYMBOLS lists {len(settings.symbols)} symbols, more than "
                f"RTPLOT_MAX_SYMBOLS={settings.max_symbols}"
            )
        if settings.auth_token and settings.jwt_key:
            raise SettingsError(
                "RTPLOT_AUTH_TOKEN and RTPLOT_JWT_KEY are both set: choose one (a shared "
                "token, or a JWT per user)"
            )
        return settings


SECRETS = ("RTPLOT_AUTH_TOKEN", "RTPLOT_JWT_KEY")  # never shown, even in an error


def redact(url: str) -> str:
    """A URL with any password in it replaced, for messages and logs."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return url.replace(f":{parsed.password}@", ":***@", 1)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def __call__(self, name: str, default: str, cast: Callable[[str], T]) -> T:
        raw = self.env.get(name, default)
        try:
            return cast(raw)
        except (ValueError, TypeError) as exc:
            shown = "<hidden>" if name in SECRETS else repr(redact(raw))
            raise SettingsError(f"{name}={shown}: {exc}") from None


def _optional(raw: str) -> str | None:
    return raw.strip() or None


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _positive(kind: Callable[[str], T]) -> Callable[[str], T]:
    def cast(raw: str) -> T:
        value = kind(raw.strip())
        if not value > 0:  # type: ignore[operator]
            raise ValueError("must be greater than 0")
        return value

    return cast


def _non_negative(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # NaN too
        raise ValueError("must be 0 or more")
    return value


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError("must be a TCP port, 0-65535")
    return port


def _at_least_one(raw: str) -> float:
    value = float(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and urlparse(origin).scheme not in ("http", "https"):
            raise ValueError(f"{origin!r} is not an origin like https://charts.example.com")
    return origins


def _optional_port(raw: str) -> int | None:
    return _port(raw) if raw.strip() else None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true/false (or 1/0)")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def _redis_url(raw: str) -> str:
    url = raw.strip()
    scheme = urlparse(url).scheme
    if scheme == "redis+sentinel":
        sentinel_parts(url)  # raises saying what is wrong
    elif scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            "must be a redis://, rediss://, unix:// or "
            "redis+sentinel://HOST:PORT,.../DB/SERVICE URL"
        )
    return url


@dataclass(frozen=True)
class SentinelParts:
    """A ``redis+sentinel://`` URL taken apart, in python-socketio's own form:
    ``redis+sentinel://[user:password@]host:port,host:port,.../DB/SERVICE``."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def sentinel_parts(url: str) -> SentinelParts:
    parsed = urlparse(url)
    hosts = parsed.netloc.rsplit("@", 1)[-1]
    sentinels = []
    for host_port in hosts.split(","):
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{host_port!r} is not HOST:PORT (a sentinel, e.g. sentinel-1:26379)")
        sentinels.append((host, int(port)))
    parts = [part for part in parsed.path.split("/") if part]
    if len(parts) != 2 or not parts[0].isdigit():
        raise ValueError("a sentinel URL ends in /DB/SERVICE, e.g. .../0/rtplot")
    return SentinelParts(
        tuple(sentinels),
        service=parts[1],
        db=int(parts[0]),
        username=parsed.username or None,
        password=parsed.password or None,
    )


def _symbols(raw: str) -> tuple[str, ...]:
    symbols: list[str] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            symbol = normalize_symbol(part)
        except InvalidSymbol as exc:
            raise ValueError(str(exc)) from None
        if symbol not in symbols:
            symbols.append(symbol)
    return tuple(symbols)


_PLUGIN = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")


def _source(raw: str) -> SourceSpec:
    text = raw.strip()
    if text in ("synthetic", "yfinance"):
        return SourceSpec(text)
    if text.startswith("csv:"):
        path = Path(text[4:]).expanduser()
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return SourceSpec("csv", path)
    if ":" in text and _PLUGIN.fullmatch(text):
        # Your own source, module.path:ClassName: the worker imports it (only it needs it).
        return SourceSpec("plugin", target=text)
    if text in installed_sources():
        return SourceSpec("plugin", target=text)
    raise ValueError(
        "must be 'synthetic', 'yfinance', 'csv:PATH', 'module.path:ClassName' or the "
        "name of an installed source (entry point group rtplot.sources)"
    )


SOURCES_GROUP = "rtplot.sources"  # the entry point group a source package registers in


def installed_sources() -> list[str]:
    """Names of the sources installed packages register (none is imported to list them)."""
    return sorted(ep.name for ep in entry_points(group=SOURCES_GROUP))


def _stream(raw: str) -> str | None:
    value = raw.strip().lower()
    if value in ("", "off", "false", "0", "no"):
        return None
    if value not in STREAMS:
        raise ValueError(f"must be off or one of {', '.join(STREAMS)}")
    return value


def _websocket_url(raw: str) -> str:
    parsed = urlparse(raw.strip())
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise ValueError("must be a ws:// or wss:// URL with a host")
    return raw.strip()


def _days(raw: str) -> tuple[tuple[Resolution, int], ...]:
    """``5m=60,1h=730,1d=7300``: days kept per resolution; ``off`` (or nothing) keeps none."""
    text = raw.strip().lower()
    if text in ("", "off", "none", "0"):
        return ()
    depths: dict[Resolution, int] = {}
    for part in text.split(","):
        name, _, days = part.strip().partition("=")
        if name not in {r.value for r in COARSE} or not days.strip().isdigit():
            raise ValueError(
                "must be resolution=days pairs of 5m, 1h and 1d, e.g. '5m=60,1h=730,1d=7300', "
                "or 'off'"
            )
        if int(days) > 0:
            depths[Resolution(name)] = int(days)
    return tuple((r, depths[r]) for r in COARSE if r in depths)


def _days_text(depths: tuple[tuple[Resolution, int], ...]) -> str:
    return ",".join(f"{resolution.value}={days}" for resolution, days in depths)


def _at_least(least: int) -> Callable[[str], int]:
    def cast(raw: str) -> int:
        value = int(raw)
        if value < least:
            raise ValueError(f"must be at least {least}")
        return value

    return cast


def _market_hours(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("always", "exchange"):
        raise ValueError("must be 'always' (trade around the clock) or 'exchange'")
    return value
