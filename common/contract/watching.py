"""Who watches what, as the services tell each other in Redis: the symbols clients
watch (beyond the configured ones), under the one cap on symbols, and the views of a
symbol clients watch.

Gateways stamp a symbol in ``Keys.watched`` when a client subscribes, and again while
anyone is subscribed; a new symbol is refused there, and only there, when it would
track more than ``RTPLOT_MAX_SYMBOLS`` (``symbol_slots``). The fetcher tracks the
configured symbols and every symbol stamped within ``RTPLOT_WATCH_TTL``
(``read_watched``), and forgets the others.

Gateways stamp a view in ``Keys.views`` likewise; renderers render a listed view while a
gateway subscribes to one of its rooms (``snapshots.ReadWindow`` counts them). A view
joined for the first time, or again after nobody watched it, is announced on the
changes stream too, so it is rendered at once rather than at the symbol's next change
(hours away when its market is closed).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from common.contract.keys import CHANGES_MAXLEN, Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall


def symbol_slots(max_symbols: int, configured: Sequence[str]) -> int:
    """How many symbols beyond the configured ones may be watched at once."""
    return max_symbols - len(configured)


WATCH = Lua(
    keys=("watched",),
    args=("symbol", "now", "live_since", "slots"),
    body="""
if redis.call('ZSCORE', watched, symbol) then
  redis.call('ZADD', watched, now, symbol)
  return 1
end
if redis.call('ZCOUNT', watched, live_since, '+inf') >= tonumber(slots) then
  return 0
end
redis.call('ZADD', watched, now, symbol)
return 1
""",
)


@dataclass(frozen=True)
class Watch(ScriptCall[bool]):
    """Stamp ``symbol`` as watched at ``now``; False when that would watch more than
    ``slots`` symbols stamped since ``live_since``."""

    lua = WATCH
    symbol: str
    now: float
    live_since: float
    slots: int

    def keys(self, keys: Keys) -> KeyArgs:
        return {"watched": keys.watched}

    def args(self, keys: Keys) -> ArgArgs:
        return {
            "symbol": self.symbol,
            "now": self.now,
            "live_since": self.live_since,
            "slots": self.slots,
        }

    def reply(self, raw: Any) -> bool:
        return bool(raw)


WATCH_VIEW = Lua(
    keys=("views", "changes"),
    args=("view", "now", "notify", "symbol", "maxlen"),
    body="""
redis.call('ZADD', views, now, view)
if notify == '1' then notice(changes, maxlen, symbol, CHANGE.view, view) end
return 1
""",
)


@dataclass(frozen=True)
class WatchView(ScriptCall[None]):
    """Stamp the view of ``symbol`` with key ``view`` as watched at ``now``; with
    ``notify``, also ask the renderers for a render of it now."""

    lua = WATCH_VIEW
    symbol: str
    view: str
    now: float
    notify: bool

    def keys(self, keys: Keys) -> KeyArgs:
        return {"views": keys.views(self.symbol), "changes": keys.changes}

    def args(self, keys: Keys) -> ArgArgs:
        return {
            "view": self.view,
            "now": self.now,
            "notify": int(self.notify),
            "symbol": self.symbol,
            "maxlen": CHANGES_MAXLEN,
        }

    def reply(self, raw: Any) -> None:
        return None


@dataclass(frozen=True)
class Watched:
    live: list[str]  # stamped within the TTL, the oldest stamp first
    expired: list[str]  # stamped before it: no longer watched, and now unlisted


def read_watched(client: "redis.Redis", keys: Keys, live_since: float) -> Watched:
    """The symbols clients watch; those whose stamp is older than ``live_since`` are
    taken off the list."""
    pipe = client.pipeline(transaction=True)
    pipe.zrangebyscore(keys.watched, "-inf", f"({live_since}")
    pipe.zremrangebyscore(keys.watched, "-inf", f"({live_since}")
    pipe.zrange(keys.watched, 0, -1)
    expired, _, live = pipe.execute()
    return Watched([raw.decode() for raw in live], [raw.decode() for raw in expired])
