"""The bar store: what the fetcher writes for each symbol (bars, meta, changelog, a
change notice) and the reads it and the renderer make of it.

``Upsert`` is one script call per symbol and tick, so a write is atomic and a
concurrent renderer never sees half of it. A bar replaces the stored one of the same
minute only when it differs; a write whose ``as_of`` is older than the last one is
refused, so a late task can never take a chart backwards. The version (and a change
notice) moves only on change. A market that changes under bars already stored starts a
new epoch: every point of every chart moves, so no delta from the old versions could
say so.

Two writers share the store: the poll (``writer="poll"``, the fetcher's tick, whose
``as_of`` is the tick's start) and the live stream (``writer="stream"``, ``rtplot
stream``, whose ``as_of`` is its newest trade's time). Each is refused only a write
older than its own last one, so the stream's writes made while a poll downloads never
get the poll's bars refused. The poll is authoritative for the minutes that were closed
when it asked: its bars replace what the stream built, and the stream no longer writes
them. The minute in progress is merged, each writer keeping what it knows best: the
open of the bar stored first, the extremes of both, the close of the newer writer and
the larger volume (the stream sees a minute's volume only from when it joined).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis

from common.bars import Bar
from common.contract.fields import MetaField
from common.contract.keys import CHANGELOG_LENGTH, CHANGES_MAXLEN, Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall
from common.contract.members import bar_member, bar_of
from common.markets import Market
from common.resolutions import COARSE

Writer = Literal["poll", "stream"]

UPSERT = Lua(
    keys=("bars", "meta", "changes", "changelog"),
    args=(
        "symbol",
        "writer",
        "as_of",
        "cutoff",
        "maxlen",
        "loglen",
        "new_epoch",
        "market",
        "*bar_pairs",
    ),
    returns=("changed", "trimmed", "version"),
    body="""
-- A merged bar is built from the two members' own text ('[t,o,h,l,c,v]', as
-- members.bar_member writes it), never re-encoded: each field is one of theirs, so the
-- result is what bar_member would write for it.
local function fields(member)
  local out = {}
  for token in string.gmatch(string.sub(member, 2, -2), '[^,]+') do out[#out + 1] = token end
  return out
end
local function merged(first, newer)  -- the open of `first`, the close of `newer`
  local a, b = fields(first), fields(newer)
  local function pick(i, larger)
    if (tonumber(b[i]) > tonumber(a[i])) == larger then return b[i] end
    return a[i]
  end
  return '[' .. table.concat({a[1], a[2], pick(3, true), pick(4, false), b[5], pick(6, true)},
                             ',') .. ']'
end
local stream = writer == 'stream'
local m = redis.call('HMGET', meta, META.version, META.as_of, META.stream_as_of)
local version = tonumber(m[1] or '0')
local polled_at, streamed_at = tonumber(m[2] or '-1'), tonumber(m[3] or '-1')
local own_field, last_as_of = META.as_of, polled_at
if stream then own_field, last_as_of = META.stream_as_of, streamed_at end
if tonumber(as_of) < last_as_of then
  return reply({changed = -1, trimmed = 0, version = version})
end
-- The poll: the minute in progress when it asked. The stream: the minutes before the
-- one the last poll caught in progress are the poll's.
local in_progress = math.floor(tonumber(as_of) / 60) * 60
local polled_minute = math.floor(polled_at / 60) * 60
local moved = false  -- the market changed under bars already stored
if market ~= '' and redis.call('HGET', meta, META.market) ~= market then
  redis.call('HSET', meta, META.market, market)
  moved = version > 0
end
local changed, first_changed = 0, -1
for i = bar_pairs, #ARGV, 2 do
  local t, bar = ARGV[i], ARGV[i + 1]
  local current = redis.call('ZRANGEBYSCORE', bars, t, t)
  local stored = current[1]
  if stored and stream then
    if tonumber(t) < polled_minute then bar = stored else bar = merged(stored, bar) end
  elseif stored and tonumber(t) >= in_progress and streamed_at > tonumber(as_of) then
    bar = merged(bar, stored)  -- the stream saw this minute's trades after the poll asked
  end
  if #current ~= 1 or current[1] ~= bar then
    if #current > 0 then redis.call('ZREMRANGEBYSCORE', bars, t, t) end
    redis.call('ZADD', bars, t, bar)
    changed = changed + 1
    if first_changed < 0 or tonumber(t) < first_changed then first_changed = tonumber(t) end
  end
end
local trimmed = redis.call('ZREMRANGEBYSCORE', bars, '-inf', '(' .. cutoff)
redis.call('HSET', meta, own_field, as_of)
if changed > 0 then redis.call('HSET', meta, META.changed_at, as_of) end
if changed + trimmed > 0 or moved then
  version = redis.call('HINCRBY', meta, META.version, 1)
  if version == 1 or moved or redis.call('HEXISTS', meta, META.epoch) == 0 then
    -- Versions start again here: a new epoch, so no reader takes them for old ones,
    -- and no changelog entry of the old versions stays to be read for the new.
    redis.call('HSET', meta, META.epoch, new_epoch)
    redis.call('DEL', changelog)
  end
  redis.call('ZADD', changelog, version, changelog_entry(version, first_changed))
  redis.call('ZREMRANGEBYRANK', changelog, 0, -(tonumber(loglen) + 1))
  notice(changes, maxlen, symbol, CHANGE.version, version)
  -- When this version was stored, on Redis' clock: where the renderer's lag starts
  -- (as_of is the tick's time, before the source was even asked).
  local now = redis.call('TIME')
  redis.call('HSET', meta, META.stored_at,
             now[1] .. '.' .. string.format('%06d', tonumber(now[2])))
end
return reply({changed = changed, trimmed = trimmed, version = version})
""",
)


@dataclass(frozen=True)
class Upserted:
    changed: int  # bars added or replaced
    trimmed: int  # bars dropped off the start of the window
    version: int  # the symbol's version after the write
    stale: bool = False  # refused: a newer write had already landed


@dataclass(frozen=True)
class Upsert(ScriptCall[Upserted]):
    """Store the bars that differ and drop those before ``cutoff``. ``market``: where
    the symbol trades, if the source said (None keeps what is stored). ``writer``: the
    poll or the live stream (the module's docstring says how the two share a minute)."""

    lua = UPSERT
    symbol: str
    bars: Sequence[Bar]
    as_of: float
    cutoff: int  # the window's first minute
    new_epoch: str  # the epoch to start, if this write starts one
    market: Market | None = None
    writer: Writer = "poll"

    def keys(self, keys: Keys) -> KeyArgs:
        s = self.symbol
        return {
            "bars": keys.bars(s),
            "meta": keys.meta(s),
            "changes": keys.changes,
            "changelog": keys.changelog(s),
        }

    def args(self, keys: Keys) -> ArgArgs:
        pairs: list[int | bytes] = []
        for bar in self.bars:
            if bar.t >= self.cutoff:
                pairs += [bar.t, bar_member(bar)]
        return {
            "symbol": self.symbol,
            "writer": self.writer,
            "as_of": repr(self.as_of),
            "cutoff": self.cutoff,
            "maxlen": CHANGES_MAXLEN,
            "loglen": CHANGELOG_LENGTH,
            "new_epoch": self.new_epoch,
            "market": b"" if self.market is None else self.market.encode(),
            "bar_pairs": pairs,
        }

    def reply(self, raw: Any) -> Upserted:
        got = UPSERT.named(raw)
        if got["changed"] < 0:
            return Upserted(0, 0, int(got["version"]), stale=True)
        return Upserted(int(got["changed"]), int(got["trimmed"]), int(got["version"]))


# A store whose history may differ from the one the epochs were made under (another
# replication id: Redis restarted and may have lost its last writes, or a replica took
# over) gives every symbol a new epoch, so no client takes re-issued versions for ones
# it already has.
NEW_LINEAGE = Lua(
    keys=("lineage", "*metas"),
    args=("replid", "*epochs"),  # an epoch per meta, in the same order
    body="""
if redis.call('GET', lineage) == replid then return 0 end
redis.call('SET', lineage, replid)
local renewed = 0
for i = metas, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], META.epoch, ARGV[epochs + i - metas])
    renewed = renewed + 1
  end
end
return renewed
""",
)


@dataclass(frozen=True)
class NewLineage(ScriptCall[int]):
    """New epochs (one each, given) for the symbols, unless ``replid`` is the history
    they were made under; how many symbols got one."""

    lua = NEW_LINEAGE
    replid: str
    epochs: Sequence[tuple[str, str]]  # (symbol, its new epoch)

    def keys(self, keys: Keys) -> KeyArgs:
        return {"lineage": keys.lineage, "metas": [keys.meta(s) for s, _ in self.epochs]}

    def args(self, keys: Keys) -> ArgArgs:
        return {"replid": self.replid, "epochs": [epoch for _, epoch in self.epochs]}

    def reply(self, raw: Any) -> int:
        return int(raw)


# -- reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    newest: int | None  # the newest stored minute, None if nothing is stored
    changed_at: float | None  # source time of the last write that changed a bar
    polled_at: float | None = None  # the as_of of the poll's last write (None: none yet)


def read_heads(client: "redis.Redis", keys: Keys, symbols: Sequence[str]) -> dict[str, Head]:
    """Each symbol's newest stored minute and when its bars last changed."""
    pipe = client.pipeline(transaction=False)
    for symbol in symbols:
        pipe.zrange(keys.bars(symbol), -1, -1, withscores=True)
        pipe.hmget(keys.meta(symbol), [MetaField.CHANGED_AT, MetaField.AS_OF])
    replies = pipe.execute()
    heads: dict[str, Head] = {}
    for i, symbol in enumerate(symbols):
        rows, (changed_at, polled_at) = replies[2 * i], replies[2 * i + 1]
        heads[symbol] = Head(
            newest=int(rows[0][1]) if rows else None,
            changed_at=None if changed_at is None else float(changed_at),
            polled_at=None if polled_at is None else float(polled_at),
        )
    return heads


def read_bars(client: "redis.Redis", keys: Keys, symbol: str) -> list[Bar]:
    members: list[bytes] = client.zrange(keys.bars(symbol), 0, -1)  # type: ignore[assignment]
    return [bar_of(member) for member in members]


def read_market(client: "redis.Redis", keys: Keys, symbol: str) -> Market | None:
    raw = client.hget(keys.meta(symbol), MetaField.MARKET)
    return None if raw is None else Market.decode(raw)


def read_epoch(client: "redis.Redis", keys: Keys, symbol: str) -> str | None:
    raw = client.hget(keys.meta(symbol), MetaField.EPOCH)
    return None if raw is None else raw.decode()  # type: ignore[union-attr]


def drop_symbol(client: "redis.Redis", keys: Keys, symbol: str, views_too: bool = True) -> None:
    """Forget a symbol nobody tracks any more: bars, history, meta, changelog, the list
    of its views and the snapshot and delta log of each. Without ``views_too``, the list
    of its views stays: the symbol is to be stored again from the source (a split), in a
    new epoch, and the views watched now rendered in it at once."""
    listed = keys.views(symbol)
    views: list[bytes] = client.zrange(listed, 0, -1)  # type: ignore[assignment]
    client.delete(
        keys.bars(symbol),
        keys.meta(symbol),
        keys.snapshot(symbol),
        keys.deltas(symbol),
        keys.changelog(symbol),
        keys.history_filled(symbol),
        *(keys.history(symbol, resolution.value) for resolution in COARSE),
        *((listed,) if views_too else ()),
        *(keys.snapshot(symbol, view.decode()) for view in views),
        *(keys.deltas(symbol, view.decode()) for view in views),
    )
