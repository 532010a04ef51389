"""The bar store: idempotent, versioned upserts of a symbol's bars into Redis.

A symbol's meta hash also holds its market (``market``: common.markets, as JSON), which
the source says and the renderer reads for the clock and the closed hours it draws. A
market that changes under bars already stored (another RTPLOT_MARKET_HOURS, a source
that learnt better) starts a new epoch: every point of every chart moves, so no delta
from the old versions could say so.
"""

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from common import changelog
from common.bars import MINUTE, Bar
from common.keys import CHANGELOG_LENGTH, CHANGES_MAXLEN, Keys
from common.markets import Market

# One script call per symbol and tick, so a write is atomic and a concurrent renderer
# never sees half of it. A bar replaces the stored one of the same minute only when it
# differs; a write whose as_of is older than the last one is refused, so a late task can
# never take a chart backwards. The version (and a change notice) moves only on change.
_UPSERT = """
local bars, meta, changes, changelog = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local symbol, as_of, cutoff, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local loglen, new_epoch, market = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local last_as_of = tonumber(redis.call('HGET', meta, 'as_of') or '-1')
local version = tonumber(redis.call('HGET', meta, 'version') or '0')
if as_of < last_as_of then
  return {-1, 0, version}
end
local moved = false  -- the market changed under bars already stored
if market ~= '' and redis.call('HGET', meta, 'market') ~= market then
  redis.call('HSET', meta, 'market', market)
  moved = version > 0
end
local changed, first_changed = 0, -1
for i = 8, #ARGV, 2 do
  local t, bar = ARGV[i], ARGV[i + 1]
  local current = redis.call('ZRANGEBYSCORE', bars, t, t)
  if #current ~= 1 or current[1] ~= bar then
    if #current > 0 then redis.call('ZREMRANGEBYSCORE', bars, t, t) end
    redis.call('ZADD', bars, t, bar)
    changed = changed + 1
    if first_changed < 0 or tonumber(t) < first_changed then first_changed = tonumber(t) end
  end
end
local trimmed = redis.call('ZREMRANGEBYSCORE', bars, '-inf', '(' .. cutoff)
redis.call('HSET', meta, 'as_of', ARGV[2])
if changed > 0 then redis.call('HSET', meta, 'changed_at', ARGV[2]) end
if changed + trimmed > 0 or moved then
  version = redis.call('HINCRBY', meta, 'version', 1)
  if version == 1 or moved or redis.call('HEXISTS', meta, 'epoch') == 0 then
    -- Versions start again here: a new epoch, so no reader takes them for old ones,
    -- and no changelog entry of the old versions stays to be read for the new.
    redis.call('HSET', meta, 'epoch', new_epoch)
    redis.call('DEL', changelog)
  end
  redis.call('ZADD', changelog, version, CHANGELOG_ENTRY)
  redis.call('ZREMRANGEBYRANK', changelog, 0, -(loglen + 1))
  redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'symbol', symbol, 'version', version)
  -- When this version was stored, on Redis' clock: where the renderer's lag starts
  -- (as_of is the tick's time, before the source was even asked).
  local now = redis.call('TIME')
  redis.call('HSET', meta, 'stored_at', now[1] .. '.' .. string.format('%06d', tonumber(now[2])))
end
return {changed, trimmed, version}
""".replace("CHANGELOG_ENTRY", changelog.LUA_ENTRY)


def new_epoch() -> str:
    """A token no earlier epoch of any symbol has had: the time, to the microsecond,
    and some randomness (two fetchers may start a symbol in the same microsecond)."""
    return f"{time.time_ns() // 1000:x}{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Head:
    newest: int | None  # the newest stored minute, None if nothing is stored
    changed_at: float | None  # source time of the last write that changed a bar


@dataclass(frozen=True)
class UpsertResult:
    changed: int  # bars added or replaced
    trimmed: int  # bars dropped off the start of the window
    version: int  # the symbol's version after the write
    stale: bool = False  # refused: an newer write had already landed


# A store whose history may differ from the one the epochs were made under (another
# replication id: Redis restarted and may have lost its last writes, or a replica took
# over) gives every symbol a new epoch, so no client takes re-issued versions for ones
# it already has. KEYS: lineage, then each symbol's meta; ARGV: replication id, epochs.
_NEW_LINEAGE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
local renewed = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'epoch', ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"""


class BarStore:
    def __init__(self, client: "redis.Redis", keys: Keys, window_minutes: int) -> None:
        self.client = client
        self.keys = keys
        self.window_minutes = window_minutes
        self._upsert = client.register_script(_UPSERT)
        self._new_lineage = client.register_script(_NEW_LINEAGE)

    def follow_lineage(self, symbols: Sequence[str]) -> int:
        """New epochs for ``symbols`` if this Redis' history is not the one their epochs
        were made under: how many symbols got one."""
        replid = str(self.client.info("replication").get("master_replid", ""))
        keys = [self.keys.lineage] + [self.keys.meta(symbol) for symbol in symbols]
        args = [replid] + [new_epoch() for _ in symbols]
        return int(self._new_lineage(keys=keys, args=args))

    def window_start(self, now: float) -> int:
        """The oldest minute kept: the window ends at the minute in progress."""
        return int(now // MINUTE) * MINUTE - (self.window_minutes - 1) * MINUTE

    def heads(self, symbols: Sequence[str]) -> dict[str, Head]:
        """Each symbol's newest stored minute and when its bars last changed."""
        pipe = self.client.pipeline(transaction=False)
        for symbol in symbols:
            pipe.zrange(self.keys.bars(symbol), -1, -1, withscores=True)
            pipe.hget(self.keys.meta(symbol), "changed_at")
        replies = pipe.execute()
        heads: dict[str, Head] = {}
        for i, symbol in enumerate(symbols):
            rows, changed_at = replies[2 * i], replies[2 * i + 1]
            heads[symbol] = Head(
                newest=int(rows[0][1]) if rows else None,
                changed_at=None if changed_at is None else float(changed_at),
            )
        return heads

    def upsert(
        self,
        symbol: str,
        bars: Iterable[Bar],
        as_of: float,
        now: float,
        market: Market | None = None,
    ) -> UpsertResult:
        """Store the bars that differ; ``market``: where the symbol trades, if the source
        said (None keeps what is stored)."""
        cutoff = self.window_start(now)
        args: list[str | bytes | int | float] = [
            symbol,
            repr(as_of),
            cutoff,
            CHANGES_MAXLEN,
            CHANGELOG_LENGTH,
            new_epoch(),
            b"" if market is None else market.encode(),
        ]
        for bar in bars:
            if bar.t >= cutoff:
                args += [bar.t, bar.encode()]
        keys = [
            self.keys.bars(symbol),
            self.keys.meta(symbol),
            self.keys.changes,
            self.keys.changelog(symbol),
        ]
        changed, trimmed, version = self._upsert(keys=keys, args=args)
        if changed < 0:
            return UpsertResult(0, 0, int(version), stale=True)
        return UpsertResult(int(changed), int(trimmed), int(version))

    def bars(self, symbol: str) -> list[Bar]:
        rows: list[bytes] = self.client.zrange(self.keys.bars(symbol), 0, -1)  # type: ignore[assignment]
        return [Bar.decode(raw) for raw in rows]

    def market(self, symbol: str) -> Market | None:
        raw = self.client.hget(self.keys.meta(symbol), "market")
        return None if raw is None else Market.decode(raw)

    def drop(self, symbol: str) -> None:
        """Forget a symbol nobody tracks any more (bars, version, snapshots of every view)."""
        listed = self.keys.views(symbol)
        views: list[bytes] = self.client.zrange(listed, 0, -1)  # type: ignore[assignment]
        self.client.delete(
            self.keys.bars(symbol),
            self.keys.meta(symbol),
            self.keys.snapshot(symbol),
            self.keys.changelog(symbol),
            listed,
            *(self.keys.snapshot(symbol, view.decode()) for view in views),
        )
