"""Which symbols the fetcher tracks: the configured ones plus those clients watch.

Gateways stamp a symbol in the ``watched`` sorted set when a client subscribes and
keep re-stamping it while anyone is subscribed. A symbol that is not configured and
whose stamp is older than ``watch_ttl`` is dropped, and its data with it.
"""

from dataclasses import dataclass

import redis

from common.keys import Keys


@dataclass(frozen=True)
class Tracked:
    symbols: list[str]  # to fetch this tick, configured first
    dropped: list[str]  # no longer watched: forget them


def tracked_symbols(
    client: "redis.Redis",
    keys: Keys,
    configured: tuple[str, ...],
    max_symbols: int,
    watch_ttl: float,
    now: float,
) -> Tracked:
    cutoff = now - watch_ttl
    pipe = client.pipeline(transaction=True)
    pipe.zrangebyscore(keys.watched, "-inf", f"({cutoff}")
    pipe.zremrangebyscore(keys.watched, "-inf", f"({cutoff}")
    pipe.zrange(keys.watched, 0, -1)  # oldest watch first; a cap keeps the earliest
    expired_raw, _, live_raw = pipe.execute()
    symbols = list(configured)
    for raw in live_raw:
        symbol = raw.decode()
        if symbol not in symbols and len(symbols) < max_symbols:
            symbols.append(symbol)
    dropped = [raw.decode() for raw in expired_raw if raw.decode() not in symbols]
    return Tracked(symbols=symbols, dropped=dropped)
