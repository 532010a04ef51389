"""Reading a symbol's bars and storing its figure snapshot, on the Redis contract."""

from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from common.bars import Bar
from common.keys import Keys

# Stores the snapshot only if its seq is newer, so a late or repeated render never
# overwrites a newer one. Returns 1 stored, 0 same seq already there, -1 older.
_STORE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
local seq = tonumber(ARGV[1])
if seq > current then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'payload', ARGV[2], 'style', ARGV[3])
  return 1
end
if seq == current then return 0 end
return -1
"""

STORED, SAME, OLDER = 1, 0, -1


@dataclass(frozen=True)
class Window:
    version: int  # the bars version these bars are; becomes the figure's seq
    bars: list[Bar]
    as_of: float | None = None  # when the fetcher stored these bars (source time)
    previous_seq: int | None = None  # the seq of the snapshot stored before this render
    previous_style: dict[str, Any] | None = None  # that snapshot's style (see figure.style_of)
    # version -> first minute that version changed (-1: only trimmed), recent versions only
    changelog: dict[int, int] = field(default_factory=dict)


class SnapshotStore:
    def __init__(self, client: "redis.Redis", keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._store = client.register_script(_STORE)

    def read_window(self, symbol: str) -> Window:
        # One transaction, so the version matches the bars exactly.
        pipe = self.client.pipeline(transaction=True)
        pipe.zrange(self.keys.bars(symbol), 0, -1)
        pipe.hmget(self.keys.meta(symbol), ["version", "as_of"])
        pipe.hmget(self.keys.snapshot(symbol), ["seq", "style"])
        pipe.zrange(self.keys.changelog(symbol), 0, -1)
        rows, (version, as_of), (previous, style), log = pipe.execute()
        # Members are JSON arrays: join them and parse once instead of per bar.
        decoded = orjson.loads(b"[" + b",".join(rows) + b"]")
        bars = [Bar(int(t), o, h, lo, c, int(v)) for t, o, h, lo, c, v in decoded]
        changelog: dict[int, int] = {}
        for entry in log:
            version_text, first_changed = entry.split(b":")
            changelog[int(version_text)] = int(first_changed)
        return Window(
            version=int(version or 0),
            bars=bars,
            as_of=None if as_of is None else float(as_of),
            previous_seq=None if previous is None else int(previous),
            previous_style=None if style is None else orjson.loads(style),
            changelog=changelog,
        )

    def store(self, symbol: str, seq: int, payload_json: bytes, style: dict[str, Any]) -> int:
        args: list[int | bytes] = [seq, payload_json, orjson.dumps(style)]
        return int(self._store(keys=[self.keys.snapshot(symbol)], args=args))

    def seq(self, symbol: str) -> int | None:
        raw = self.client.hget(self.keys.snapshot(symbol), "seq")
        return None if raw is None else int(raw)
