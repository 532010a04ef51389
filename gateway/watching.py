"""Telling the fetcher which unconfigured symbols clients watch, within a cap."""

import time

from common.keys import Keys
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


def refresh_every(settings: Settings) -> float:
    """How often a gateway re-stamps the symbols its clients watch: well inside the TTL."""
    return max(settings.watch_ttl / 4, 0.5)


def watch_args(settings: Settings, symbol: str) -> tuple[list[str], list[str | float | int]]:
    now = time.time()
    free = settings.max_symbols - len(settings.symbols)
    return [Keys(settings.key_prefix).watched], [symbol, now, now - settings.watch_ttl, free]


def too_many(settings: Settings) -> str:
    return f"too many symbols tracked (RTPLOT_MAX_SYMBOLS={settings.max_symbols}); try later"
