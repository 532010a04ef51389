"""Telling the fetcher which unconfigured symbols clients watch, within a cap; and the
renderers which views of a symbol (common.views) clients watch."""

import time

from common.keys import CHANGES_MAXLEN, Keys
from common.settings import Settings

# Stamps the symbol as watched now, unless that would track more symbols than allowed.
# KEYS[1] watched zset; ARGV: symbol, now, live-since cutoff, free slots.
WATCH_SCRIPT = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return 1
end
if redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf') >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


# Stamps a view of a symbol as watched now and, when asked, leaves a change notice for
# the renderers, who render a listed view while a gateway subscribes to its rooms: a
# view joined for the first time, or again after nobody watched it, is rendered at once
# rather than at the symbol's next change (hours away when its market is closed).
# KEYS[1] the symbol's views zset, KEYS[2] the changes stream; ARGV: view key, now,
# notify (1/0), symbol, stream length.
WATCH_VIEW_SCRIPT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if ARGV[3] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'symbol', ARGV[4], 'view', ARGV[1])
end
return 1
"""


def watch_view_args(
    settings: Settings, symbol: str, view: str, notify: bool
) -> tuple[list[str], list[str | float | int]]:
    keys = Keys(settings.key_prefix)
    args: list[str | float | int] = [view, time.time(), int(notify), symbol, CHANGES_MAXLEN]
    return [keys.views(symbol), keys.changes], args


def refresh_every(settings: Settings) -> float:
    """How often a gateway re-stamps the symbols its clients watch: well inside the TTL."""
    return max(settings.watch_ttl / 4, 0.5)


def watch_args(settings: Settings, symbol: str) -> tuple[list[str], list[str | float | int]]:
    now = time.time()
    free = settings.max_symbols - len(settings.symbols)
    return [Keys(settings.key_prefix).watched], [symbol, now, now - settings.watch_ttl, free]


def too_many(settings: Settings) -> str:
    return f"too many symbols tracked (RTPLOT_MAX_SYMBOLS={settings.max_symbols}); try later"
