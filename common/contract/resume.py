"""Resuming: what carries a client that held seq S of epoch E of a view to the newest
render, read in one script call by any gateway (the log lives in Redis, not in a
gateway's memory).

The renderer appends each render's ``bars`` payload to the view's log
(``Keys.deltas``, written by ``snapshots.WriteRender``). ``ReadResume`` reads the
snapshot's epoch and newest seq and the logged deltas after S; when they lead from S to
that seq, they are chained into one ``bars`` payload (``common.deltas``), whose
``base_seq`` is S. Otherwise (another epoch, S older than the log, a render that was
sent whole) the client needs the snapshot, as a new subscriber does.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from common.contract.keys import Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall
from common.deltas import Broken, chain

READ_RESUME = Lua(
    keys=("snapshot", "deltas"),
    args=("epoch", "since"),
    returns=("epoch", "head", "deltas"),
    body="""
local s = redis.call('HMGET', snapshot, SNAP.epoch, SNAP.head)
if s[1] ~= epoch or not s[2] or tonumber(s[2]) <= tonumber(since) then
  return reply({epoch = s[1], head = s[2]})
end
return reply({epoch = s[1], head = s[2],
              deltas = redis.call('ZRANGEBYSCORE', deltas, '(' .. since, s[2])})
""",
)


class Outcome(Enum):
    RESUMED = "resumed"  # ``bars`` carries the client to the newest render
    CURRENT = "current"  # it holds the newest render: nothing to send
    OTHER_EPOCH = "other_epoch"  # its epoch is gone (or nothing is rendered yet)
    TOO_OLD = "too_old"  # the log does not reach back to its seq


@dataclass(frozen=True)
class Resume:
    outcome: Outcome
    seq: int | None = None  # the newest render's
    bars: bytes | None = None  # the ``bars`` payload from the client's seq to ``seq``

    @property
    def resumed(self) -> bool:
        return self.outcome in (Outcome.RESUMED, Outcome.CURRENT)


@dataclass(frozen=True)
class ReadResume(ScriptCall[Resume]):
    symbol: str
    view: str
    epoch: str
    since: int  # the seq the client holds

    lua = READ_RESUME

    def keys(self, keys: Keys) -> KeyArgs:
        return {
            "snapshot": keys.snapshot(self.symbol, self.view),
            "deltas": keys.deltas(self.symbol, self.view),
        }

    def args(self, keys: Keys) -> ArgArgs:
        return {"epoch": self.epoch, "since": self.since}

    def reply(self, raw: Any) -> Resume:
        got = READ_RESUME.named(raw)
        if not got["epoch"] or got["epoch"].decode() != self.epoch or got["head"] is None:
            return Resume(Outcome.OTHER_EPOCH)
        head = int(got["head"])
        if head == self.since:
            return Resume(Outcome.CURRENT, head)
        if head < self.since:  # a seq this epoch never reached: not one the client held
            return Resume(Outcome.OTHER_EPOCH)
        try:
            composed = chain([orjson.loads(d) for d in got["deltas"] or ()], self.since, head)
        except Broken:
            return Resume(Outcome.TOO_OLD, head)
        return Resume(Outcome.RESUMED, head, orjson.dumps(composed))
