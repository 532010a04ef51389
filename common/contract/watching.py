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
(hours away when its market is closed). Each view is rendered on every change of its
symbol, so a new one is refused over ``RTPLOT_MAX_VIEWS_PER_SYMBOL`` views of its symbol,
or ``RTPLOT_MAX_VIEWS`` in all (``Keys.watched_views``), each counting the views stamped
within ``RTPLOT_WATCH_TTL``; a view already watched is always stamped again.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
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


def view_member(symbol: str, view: str) -> str:
    """A view's member of ``Keys.watched_views``."""
    return f"{symbol}@{view}"


class ViewStamp(IntEnum):
    WATCHED = 1
    OVER_SYMBOL_CAP = 0  # a new view, and its symbol has its cap of views already
    OVER_TOTAL_CAP = -1  # a new view, and there are as many views as the cap in all


WATCH_VIEW = Lua(
    keys=("views", "watched_views", "changes"),
    args=(
        "view",
        "member",
        "now",
        "live_since",
        "per_symbol",
        "in_all",
        "notify",
        "symbol",
        "maxlen",
    ),
    body="""
local stamped = tonumber(redis.call('ZSCORE', views, view) or '-1')
if stamped < tonumber(live_since) then
  if redis.call('ZCOUNT', views, live_since, '+inf') >= tonumber(per_symbol) then
    return STAMP.over_symbol_cap
  end
  redis.call('ZREMRANGEBYSCORE', watched_views, '-inf', '(' .. live_since)
  if redis.call('ZCARD', watched_views) >= tonumber(in_all)
      and not redis.call('ZSCORE', watched_views, member) then
    return STAMP.over_total_cap
  end
end
redis.call('ZADD', views, now, view)
redis.call('ZADD', watched_views, now, member)
if notify == '1' then notice(changes, maxlen, symbol, CHANGE.view, view) end
return STAMP.watched
""",
    tables={"STAMP": {s.name.lower(): s.value for s in ViewStamp}},
)


@dataclass(frozen=True)
class WatchView(ScriptCall[ViewStamp]):
    """Stamp the view of ``symbol`` with key ``view`` as watched at ``now``; with
    ``notify``, also ask the renderers for a render of it now. A view not stamped since
    ``live_since`` is new: refused over ``per_symbol`` views of its symbol or ``in_all``
    views in all."""

    lua = WATCH_VIEW
    symbol: str
    view: str
    now: float
    notify: bool
    live_since: float = 0.0
    per_symbol: int = 1_000_000
    in_all: int = 1_000_000

    def keys(self, keys: Keys) -> KeyArgs:
        return {
            "views": keys.views(self.symbol),
            "watched_views": keys.watched_views,
            "changes": keys.changes,
        }

    def args(self, keys: Keys) -> ArgArgs:
        return {
            "view": self.view,
            "member": view_member(self.symbol, self.view),
            "now": self.now,
            "live_since": self.live_since,
            "per_symbol": self.per_symbol,
            "in_all": self.in_all,
            "notify": int(self.notify),
            "symbol": self.symbol,
            "maxlen": CHANGES_MAXLEN,
        }

    def reply(self, raw: Any) -> ViewStamp:
        return ViewStamp(int(raw))


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


def read_watched_now(client: "redis.Redis", keys: Keys, live_since: float) -> list[str]:
    """The symbols clients watch, as ``read_watched`` has them, without taking any off
    the list: for readers other than the fetcher, which forgets the expired ones."""
    live: list[bytes] = client.zrangebyscore(keys.watched, live_since, "+inf")  # type: ignore[assignment]
    return [raw.decode() for raw in live]
