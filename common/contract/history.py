"""A symbol's history: its bars at coarser resolutions (5m, 1h, 1d), kept for longer
than the 1-minute window, the past its views draw (docs/views.md).

``Keys.history`` holds one resolution in chunks (``CHUNK_SECONDS``). ``write_history``
is the fetcher's write of one resolution over a span: the stored bars starting in the
span are replaced by the new ones, and ``StoreHistory`` writes the chunks that changed
in one script call, drops those older than the resolution's depth, and when that
changed anything moves the symbol's history version (``MetaField.HISTORY``) and its
version on together, with a changelog entry that changes no minute and a change
notice, so renderers draw every view again from the new history in the same epoch. A
write for a symbol with no epoch yet (nothing fetched) is refused: a symbol's history
has the epoch of its minutes. Writing the same bars again changes nothing: a write is
idempotent.

``read_history`` is the renderer's read of one resolution, whole.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import redis

from common.bars import Bar
from common.contract.changelog import NOTHING_CHANGED
from common.contract.keys import CHANGELOG_LENGTH, CHANGES_MAXLEN, Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall, Scripts
from common.markets import DAY
from common.resolutions import Columns, Resolution

# Bars are kept in chunks, one member per span of time (its start the score), a compact
# JSON array of ``[t, o, h, l, c, v]`` rows: a member a bar would cost ~130 bytes of
# Redis a bar, a chunk ~45 (docs/operations.md), and a write of years is a few hundred
# members, not thousands.
CHUNK_SECONDS = {Resolution.M5: DAY, Resolution.H1: 7 * DAY, Resolution.D1: 180 * DAY}


def chunk_start(t: int, resolution: Resolution) -> int:
    size = CHUNK_SECONDS[resolution]
    return t // size * size


STORE_HISTORY = Lua(
    keys=("history", "filled", "meta", "changes", "changelog"),
    args=(
        "symbol",
        "resolution",
        "keep_from",
        "filled_at",
        "nothing_changed",
        "maxlen",
        "loglen",
        "*chunk_pairs",  # chunk start, member ('' : the chunk is gone)
    ),
    returns=("stored", "version"),
    body="""
if redis.call('HEXISTS', meta, META.epoch) == 0 then return reply({stored = -1, version = 0}) end
local stored = 0
for i = chunk_pairs, #ARGV, 2 do
  local start, member = ARGV[i], ARGV[i + 1]
  local old = redis.call('ZRANGEBYSCORE', history, start, start)
  if (old[1] or '') ~= member then
    redis.call('ZREMRANGEBYSCORE', history, start, start)
    if member ~= '' then redis.call('ZADD', history, start, member) end
    stored = stored + 1
  end
end
local trimmed = redis.call('ZREMRANGEBYSCORE', history, '-inf', '(' .. keep_from)
redis.call('HSET', filled, resolution, filled_at)
local version = tonumber(redis.call('HGET', meta, META.version) or '0')
if stored == 0 and trimmed == 0 then return reply({stored = 0, version = version}) end
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
    stored: int  # chunks written (0: the same bars were there already)
    version: int  # the symbol's version after the write
    refused: bool = False  # the symbol has no epoch yet: nothing was written


@dataclass(frozen=True)
class StoreHistory(ScriptCall[HistoryStored]):
    """Write whole chunks of ``resolution`` (``chunks``: start -> its rows, none: gone)
    and drop the chunks before ``keep_from``'s. ``write_history`` makes them from bars."""

    lua = STORE_HISTORY
    symbol: str
    resolution: Resolution
    chunks: Mapping[int, Sequence[Sequence[float | int]]]
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
        for start, rows in sorted(self.chunks.items()):
            pairs += [start, orjson.dumps(list(rows)) if rows else b""]
        return {
            "symbol": self.symbol,
            "resolution": self.resolution.value,
            "keep_from": chunk_start(self.keep_from, self.resolution),
            "filled_at": repr(self.filled_at),
            "nothing_changed": NOTHING_CHANGED,
            "maxlen": CHANGES_MAXLEN,
            "loglen": CHANGELOG_LENGTH,
            "chunk_pairs": pairs,
        }

    def reply(self, raw: Any) -> HistoryStored:
        got = STORE_HISTORY.named(raw)
        if got["stored"] < 0:
            return HistoryStored(0, 0, refused=True)
        return HistoryStored(int(got["stored"]), int(got["version"]))


def write_history(
    client: "redis.Redis",
    keys: Keys,
    symbol: str,
    resolution: Resolution,
    span: tuple[int, int],
    bars: Sequence[Bar] | Sequence[Sequence[Any]],
    keep_from: int,
    filled_at: float,
) -> HistoryStored:
    """Replace the stored bars of ``resolution`` starting in ``span`` with ``bars`` (and
    drop those more than the depth, ``keep_from``, ago); ``bars`` as ``Bar``s or as rows
    ``[t, o, h, l, c, v]``. The chunks the span touches are
    read, the bars outside it kept, and each chunk written whole. Written by one worker
    at a time per symbol (the beat's ticks); two at once write the same source's bars."""
    start, end = span
    rows = [bar.as_list() if isinstance(bar, Bar) else list(bar) for bar in bars]
    wanted = sorted((row for row in rows if start <= row[0] < end), key=lambda row: row[0])
    chunks: dict[int, list[list[Any]]] = {}
    if end > start:
        lo, hi = chunk_start(start, resolution), chunk_start(end - 1, resolution)
        for row in read_rows(client, keys, symbol, resolution, lo, hi):
            if not start <= row[0] < end:
                chunks.setdefault(chunk_start(int(row[0]), resolution), []).append(row)
        for first in range(lo, hi + 1, CHUNK_SECONDS[resolution]):
            chunks.setdefault(first, [])
    for row in wanted:
        chunks.setdefault(chunk_start(int(row[0]), resolution), []).append(row)
    ordered = {first: sorted(rows, key=lambda row: row[0]) for first, rows in chunks.items()}
    call = StoreHistory(symbol, resolution, ordered, keep_from, filled_at)
    return Scripts(client, keys).run(call)


def read_rows(
    client: "redis.Redis",
    keys: Keys,
    symbol: str,
    resolution: Resolution,
    first_chunk: float = float("-inf"),
    last_chunk: float = float("inf"),
) -> list[list[Any]]:
    """The stored rows of the chunks from ``first_chunk`` to ``last_chunk``, in order."""
    members: list[bytes] = client.zrangebyscore(  # type: ignore[assignment]
        keys.history(symbol, resolution.value), first_chunk, last_chunk
    )
    # Each member is a JSON array of rows: joined, their rows are one array, parsed once.
    return orjson.loads(b"[" + b",".join(m[1:-1] for m in members if len(m) > 2) + b"]")  # type: ignore[no-any-return]


def read_history(client: "redis.Redis", keys: Keys, symbol: str, resolution: Resolution) -> Columns:
    """Every stored bar of ``resolution``, as columns."""
    rows = np.asarray(read_rows(client, keys, symbol, resolution), dtype=np.float64)
    rows = rows.reshape(-1, 6)
    return Columns(
        rows[:, 0].astype(np.int64),
        rows[:, 1],
        rows[:, 2],
        rows[:, 3],
        rows[:, 4],
        rows[:, 5].astype(np.int64),
    )


# A field of the "filled" hash beside the resolutions': the bar (epoch s) of the newest
# split the symbol's stored bars already reflect (fetcher.history).
SPLIT = "split"


def mark_split(client: "redis.Redis", keys: Keys, symbol: str, at: int) -> None:
    """The stored bars of ``symbol`` reflect the split at ``at`` (and every one before)."""
    client.hset(keys.history_filled(symbol), SPLIT, at)


def read_filled(
    client: "redis.Redis", keys: Keys, symbols: Sequence[str]
) -> dict[str, dict[str, float]]:
    """When each symbol's history was last asked for, by resolution (epoch s), and the
    newest split its bars reflect (``SPLIT``), if any."""
    pipe = client.pipeline(transaction=False)
    for symbol in symbols:
        pipe.hgetall(keys.history_filled(symbol))
    return {
        symbol: {k.decode(): float(v) for k, v in got.items()}
        for symbol, got in zip(symbols, pipe.execute(), strict=True)
    }
