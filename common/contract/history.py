"""A symbol's history: its bars at coarser resolutions (5m, 1h, 1d), kept for longer
than the 1-minute window, the past its views draw (docs/views.md).

``StoreHistory`` is the fetcher's write of one resolution over a span, one script call:
the stored bars starting in the span are replaced by the new ones, those older than the
resolution's depth dropped, and when that changed anything, the symbol's history version
(``MetaField.HISTORY``) and its version move on together, with a changelog entry that
changes no minute and a change notice, so renderers draw every view again from the new
history in the same epoch. A write for a symbol with no epoch yet (nothing fetched) is
refused: the history of a symbol has the epoch of its minutes. Writing the same bars
again changes nothing, so a write is idempotent.

``read_history`` is the renderer's read of one resolution, whole.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from common.bars import Bar
from common.contract.changelog import NOTHING_CHANGED
from common.contract.keys import CHANGELOG_LENGTH, CHANGES_MAXLEN, Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall
from common.contract.members import bar_member, bar_rows
from common.resolutions import Columns, Resolution

STORE_HISTORY = Lua(
    keys=("history", "filled", "meta", "changes", "changelog"),
    args=(
        "symbol",
        "resolution",
        "span_start",
        "span_end",
        "keep_from",
        "filled_at",
        "nothing_changed",
        "maxlen",
        "loglen",
        "*bar_pairs",
    ),
    returns=("stored", "version"),
    body="""
if redis.call('HEXISTS', meta, META.epoch) == 0 then return reply({stored = -1, version = 0}) end
local old = redis.call('ZRANGEBYSCORE', history, span_start, '(' .. span_end)
local same = #old * 2 == #ARGV - bar_pairs + 1
if same then
  for i, member in ipairs(old) do
    if ARGV[bar_pairs + 2 * i - 1] ~= member then same = false break end
  end
end
local stored = 0
if not same then
  redis.call('ZREMRANGEBYSCORE', history, span_start, '(' .. span_end)
  for i = bar_pairs, #ARGV, 2 do
    redis.call('ZADD', history, ARGV[i], ARGV[i + 1])
    stored = stored + 1
  end
end
local trimmed = redis.call('ZREMRANGEBYSCORE', history, '-inf', '(' .. keep_from)
redis.call('HSET', filled, resolution, filled_at)
local version = tonumber(redis.call('HGET', meta, META.version) or '0')
if same and trimmed == 0 then return reply({stored = 0, version = version}) end
redis.call('HINCRBY', meta, META.history, 1)
version = redis.call('HINCRBY', meta, META.version, 1)
redis.call('ZADD', changelog, version, changelog_entry(version, nothing_changed))
redis.call('ZREMRANGEBYRANK', changelog, 0, -(tonumber(loglen) + 1))
notice(changes, maxlen, symbol, CHANGE.version, version)
return reply({stored = stored, version = version})
""",
)


@dataclass(frozen=True)
class HistoryStored:
    stored: int  # bars written (0: the same bars were there already)
    version: int  # the symbol's version after the write
    refused: bool = False  # the symbol has no epoch yet: nothing was written


@dataclass(frozen=True)
class StoreHistory(ScriptCall[HistoryStored]):
    """Replace the bars of ``resolution`` starting in ``[start, end)`` with ``bars`` and
    drop those before ``keep_from``."""

    lua = STORE_HISTORY
    symbol: str
    resolution: Resolution
    start: int
    end: int
    bars: Sequence[Bar]
    keep_from: int
    filled_at: float

    def keys(self, keys: Keys) -> KeyArgs:
        s = self.symbol
        return {
            "history": keys.history(s, self.resolution.value),
            "filled": keys.history_filled(s),
            "meta": keys.meta(s),
            "changes": keys.changes,
            "changelog": keys.changelog(s),
        }

    def args(self, keys: Keys) -> ArgArgs:
        pairs: list[int | bytes] = []
        for bar in sorted(self.bars, key=lambda bar: bar.t):
            if self.start <= bar.t < self.end and bar.t >= self.keep_from:
                pairs += [bar.t, bar_member(bar)]
        return {
            "symbol": self.symbol,
            "resolution": self.resolution.value,
            "span_start": self.start,
            "span_end": self.end,
            "keep_from": self.keep_from,
            "filled_at": repr(self.filled_at),
            "nothing_changed": NOTHING_CHANGED,
            "maxlen": CHANGES_MAXLEN,
            "loglen": CHANGELOG_LENGTH,
            "bar_pairs": pairs,
        }

    def reply(self, raw: Any) -> HistoryStored:
        got = STORE_HISTORY.named(raw)
        if got["stored"] < 0:
            return HistoryStored(0, 0, refused=True)
        return HistoryStored(int(got["stored"]), int(got["version"]))


def read_history(
    client: "redis.Redis", keys: Keys, symbol: str, resolution: Resolution, since: float = 0
) -> Columns:
    """The stored bars of ``resolution`` starting at or after ``since``, as columns."""
    members: list[bytes] = client.zrangebyscore(  # type: ignore[assignment]
        keys.history(symbol, resolution.value), since, "+inf"
    )
    rows = np.asarray(bar_rows(members), dtype=np.float64).reshape(-1, 6)
    return Columns(
        rows[:, 0].astype(np.int64),
        rows[:, 1],
        rows[:, 2],
        rows[:, 3],
        rows[:, 4],
        rows[:, 5].astype(np.int64),
    )


def read_filled(
    client: "redis.Redis", keys: Keys, symbols: Sequence[str]
) -> dict[str, dict[str, float]]:
    """When each symbol's history was last asked for, by resolution (epoch s)."""
    pipe = client.pipeline(transaction=False)
    for symbol in symbols:
        pipe.hgetall(keys.history_filled(symbol))
    return {
        symbol: {k.decode(): float(v) for k, v in got.items()}
        for symbol, got in zip(symbols, pipe.execute(), strict=True)
    }
