"""Which symbols the fetcher tracks: the configured ones plus those clients watch.

Gateways stamp what clients watch, within the one cap on symbols
(common.contract.watching); a symbol that is not configured and whose stamp is older
than ``watch_ttl`` is dropped, and its data with it.
"""

from dataclasses import dataclass

import redis

from common.contract.keys import Keys
from common.contract.watching import read_watched


@dataclass(frozen=True)
class Tracked:
    symbols: list[str]  # to fetch this tick, configured first
    dropped: list[str]  # no longer watched: forget them


def tracked_symbols(
    client: "redis.Redis", keys: Keys, configured: tuple[str, ...], watch_ttl: float, now: float
) -> Tracked:
    watched = read_watched(client, keys, now - watch_ttl)
    symbols = list(dict.fromkeys([*configured, *watched.live]))
    dropped = [symbol for symbol in watched.expired if symbol not in symbols]
    return Tracked(symbols=symbols, dropped=dropped)
