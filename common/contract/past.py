"""A client's ``history`` request read from the store: the bars of a view before a time,
as rows like a delta's (common.series), with the view's indicator values.

``ReadPast`` is one script call: the symbol's epoch and market and the newest stored
bars before ``before`` at the view's resolution (common.resolutions.history_of: a 15m
view reads the 5m history), enough of them for ``count`` bars and their indicators'
warm-up (common.series.warmup_bars), never the whole history; a 1-minute view, or a
coarser one whose history is not stored (``RTPLOT_HISTORY_DAYS=off``), reads the
1-minute window and rolls it up. Its reply computes the rows, so a gateway sharing
one read among the clients asking the same (gateway.shared_reads) computes them once.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from common.contract.history import CHUNK_SECONDS
from common.contract.keys import Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall
from common.markets import DAY, Market, market_for
from common.resolutions import Columns, history_of
from common.series import on_timeframe, past_rows, warmup_bars
from common.views import View

MAX_ROWS = 2_000  # the most rows one request is answered with
DEFAULT_ROWS = 500
# The most 1-minute bars one request reads (a coarse view with no history stored rolls
# up the window's minutes): the default window, a week.
MAX_MINUTES = 7 * 24 * 60

READ_PAST = Lua(
    keys=("meta", "bars", "history"),
    args=("upper", "chunks_needed", "minutes_needed"),
    returns=("epoch", "market", "chunked", "members", "whole"),
    body="""
local m = redis.call('HMGET', meta, META.epoch, META.market)
if not m[1] then return reply({epoch = false}) end
local members, whole = {}, 1
local chunked = tonumber(chunks_needed) > 0 and redis.call('EXISTS', history) == 1
if chunked then
  -- Chunks newest first, each '[[t,...],[t,...]]': counted by its row separators.
  local rows, offset = 0, 0
  while rows < tonumber(chunks_needed) do
    local got = redis.call('ZREVRANGEBYSCORE', history, upper, '-inf', 'LIMIT', offset, 1)
    if #got == 0 then break end
    members[#members + 1] = got[1]
    local _, separators = string.gsub(got[1], '%],%[', '')
    rows, offset = rows + separators + 1, offset + 1
  end
  local older = redis.call('ZREVRANGEBYSCORE', history, upper, '-inf', 'LIMIT', offset, 1)
  if #older > 0 then whole = 0 end
else
  members = redis.call('ZREVRANGEBYSCORE', bars, '(' .. upper, '-inf', 'LIMIT', 0, minutes_needed)
  local first = redis.call('ZRANGE', bars, 0, 0)
  if #members > 0 and members[#members] ~= first[1] then whole = 0 end
end
return reply({epoch = m[1], market = m[2] or '', chunked = chunked and 1 or 0,
              members = members, whole = whole})
""",
)


@dataclass(frozen=True)
class Past:
    """A ``history`` answer: ``rows`` oldest first, each ``[x, o, h, l, c, v, <indicator
    values>]``; every stored bar of the view in ``[first, before)`` is among them
    (``first``: the first row's x, or ``before`` if there are none); ``oldest``: no
    stored bar is older. ``epoch`` "" when the symbol has no bars stored."""

    epoch: str
    rows: list[list[Any]]
    first: int
    oldest: bool


@dataclass(frozen=True)
class ReadPast(ScriptCall[Past]):
    """The view's last ``count`` bars starting before ``before`` (and at or after
    ``after``, if given); times are bar starts on the exchange's clock, as rows' x."""

    lua = READ_PAST
    symbol: str
    view: View
    before: int
    count: int
    after: int | None = None

    def keys(self, keys: Keys) -> KeyArgs:
        resolution = history_of(self.view.timeframe)
        return {
            "meta": keys.meta(self.symbol),
            "bars": keys.bars(self.symbol),
            "history": keys.history(self.symbol, resolution.value if resolution else "1m"),
        }

    def args(self, keys: Keys) -> ArgArgs:
        resolution = history_of(self.view.timeframe)
        # Read by UTC start; a bar before ``before`` on any exchange's clock starts before
        # ``before`` + a day in UTC. Read a day more than needed and cut by the local x.
        count = self.count
        if self.after is not None:  # no more bars than [after, before) holds, at most
            count = min(count, (self.before - self.after) // self.view.seconds + 1)
        bars = count + warmup_bars(self.view)
        chunks = 0
        if resolution is not None:
            per = self.view.seconds // resolution.seconds  # a 15m bar is 3 of 5m
            # (and the newest chunk read may hold up to a chunk of bars after ``before``)
            later = (DAY + CHUNK_SECONDS[resolution]) // resolution.seconds
            chunks = (bars + 1) * per + later
        minutes = min((bars + 1) * self.view.seconds // 60 + DAY // 60, MAX_MINUTES)
        return {
            "upper": self.before + DAY,
            "chunks_needed": chunks,
            "minutes_needed": minutes,
        }

    def reply(self, raw: Any) -> Past:
        got = READ_PAST.named(raw)
        if not got["epoch"]:
            return Past("", [], self.before, True)
        market = Market.decode(got["market"]) if got["market"] else None
        market = market or market_for(self.symbol).always_open()
        members = list(reversed(got["members"]))  # oldest first
        if got["chunked"]:  # each a JSON array of rows: joined, one array, parsed once
            text = b"[" + b",".join(m[1:-1] for m in members if len(m) > 2) + b"]"
        else:
            text = b"[" + b",".join(members) + b"]"
        table = np.asarray(orjson.loads(text), dtype=np.float64).reshape(-1, 6)
        t, o, h, low, c, v = table.T
        stored = Columns(t.astype(np.int64), o, h, low, c, v.astype(np.int64))
        bars = on_timeframe(stored, self.view, market)
        rows, oldest = past_rows(
            bars, self.view, self.before, self.count, self.after, bool(got["whole"])
        )
        first = int(rows[0][0]) if rows else self.before
        return Past(got["epoch"].decode(), rows, first, oldest)
