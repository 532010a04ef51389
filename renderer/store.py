"""The renderer's side of the Redis contract: read what changed, write a render.

Two scripts, each one round trip and atomic, so a concurrent fetcher or renderer never
shows either of them half a state.

READ takes the epoch and version of the window the renderer holds and returns the
store's version, the snapshot's state, the changelog since the oldest of those, and the
bars: only those from the first minute changed since the held version when the
changelog proves every version in between, or else all of them.

WRITE stores a render and publishes its delta, in that order, and says who watches the
symbol's whole-figure rooms (``PUBSUB NUMSUB``), asked after the store so that a
subscriber this count misses reads a snapshot at least as new. The snapshot hash holds:

- ``epoch``, ``head``, ``head_style``: the newest render's seq and look, the base of the
  next delta; a render whose seq is not above ``head`` is refused, so a chart never
  goes backwards;
- ``seq``, ``payload``, ``style``, ``stored_at``: the newest whole figure stored, which
  is written at most every ``RTPLOT_SNAPSHOT_EVERY`` seconds;
- ``catchup``: the ``bars`` event from ``seq`` to ``head`` (absent when they are equal),
  so the stored figure plus it is the newest render; ``catchup_from``, the first minute
  any render since ``seq`` changed, which each render moves back as far as it must.
"""

from dataclasses import dataclass
from typing import Any

import orjson
import redis

from common import changelog
from common.keys import Keys
from common.messages import delta_room, figure_room, legacy_room

_READ = """
local bars, meta, snap, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local held_epoch, held = ARGV[1], tonumber(ARGV[2])
local m = redis.call('HMGET', meta, 'version', 'epoch', 'as_of')
local version = tonumber(m[1] or '0')
local s = redis.call('HMGET', snap, 'epoch', 'seq', 'style', 'head', 'head_style', 'stored_at',
                     'catchup_from')
local same = m[2] ~= false and m[2] == held_epoch and held <= version
local since = version
if same then since = math.min(since, held) end
if s[1] ~= false and s[1] == m[2] then
  since = math.min(since, tonumber(s[2] or version), tonumber(s[4] or version))
end
local entries = redis.call('ZRANGEBYSCORE', log, '(' .. since, '+inf')
local from = '-inf'
if same then
  local logged, first = 0, nil
  for _, entry in ipairs(entries) do
    local v, minute = string.match(entry, '^(%d+):(%-?%d+)$')
    v, minute = tonumber(v), tonumber(minute)
    if v > held and v <= version then
      logged = logged + 1
      if minute >= 0 and (first == nil or minute < first) then first = minute end
    end
  end
  if logged == version - held then from = first or '+inf' end
end
local rows = {}
if from ~= '+inf' then rows = redis.call('ZRANGEBYSCORE', bars, from, '+inf') end
local head = redis.call('ZRANGE', bars, 0, 0, 'WITHSCORES')
return {m[1], m[2], m[3], s, entries, tostring(from), rows, head[2] or false,
        redis.call('ZCARD', bars)}
"""

_WRITE = """
local snap = KEYS[1]
local epoch, seq = ARGV[1], tonumber(ARGV[2])
local s = redis.call('HMGET', snap, 'epoch', 'head', 'seq')
if s[1] == epoch then
  local head = tonumber(s[2] or '-1')
  if seq < head then return {-1, 0, 0} end
  if seq == head then return {0, 0, 0} end
elseif ARGV[7] == '' then
  return {-2, 0, 0}
else
  redis.call('DEL', snap)
end
redis.call('HSET', snap, 'epoch', epoch, 'head', seq, 'head_style', ARGV[3])
if ARGV[7] ~= '' then
  redis.call('HSET', snap, 'seq', seq, 'payload', ARGV[7], 'style', ARGV[8], 'stored_at', ARGV[9])
  redis.call('HDEL', snap, 'catchup', 'catchup_from')
elseif s[3] ~= false and tonumber(s[3]) == tonumber(ARGV[5]) then
  redis.call('HSET', snap, 'catchup', ARGV[6], 'catchup_from', ARGV[10])
else
  redis.call('HDEL', snap, 'catchup', 'catchup_from')
end
redis.call('PUBLISH', KEYS[2], ARGV[4])
local counts = redis.call('PUBSUB', 'NUMSUB', KEYS[3], KEYS[4])
return {1, counts[2], counts[4]}
"""

STORED, SAME, OLDER, NEEDS_FIGURE = 1, 0, -1, -2


@dataclass(frozen=True)
class Stored:
    """What the snapshot hash held when the window was read (this epoch only)."""

    seq: int | None = None
    style: dict[str, Any] | None = None
    head: int | None = None
    head_style: dict[str, Any] | None = None
    stored_at: float | None = None
    catchup_from: int = changelog.NOTHING_CHANGED  # first minute changed since ``seq``


@dataclass(frozen=True)
class Read:
    version: int  # 0: the symbol has no bars in the store
    epoch: str
    as_of: float | None
    stored: Stored
    entries: dict[int, int]  # the changelog: version -> first changed minute
    changed_from: float | None  # rows are every bar from this minute; None: all bars
    rows: list[list[float]]
    start: int | None  # the store's first minute
    count: int  # bars in the store


@dataclass(frozen=True)
class Written:
    outcome: int  # STORED, SAME, OLDER or NEEDS_FIGURE
    watchers: dict[str, int]  # whole-figure room -> gateways subscribed


class RenderStore:
    def __init__(self, client: "redis.Redis", keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._read = client.register_script(_READ)
        self._write = client.register_script(_WRITE)

    def read(self, symbol: str, held_epoch: str = "", held_version: int = 0) -> Read:
        k = self.keys
        keys = [k.bars(symbol), k.meta(symbol), k.snapshot(symbol), k.changelog(symbol)]
        reply = self._read(keys=keys, args=[held_epoch, held_version])
        version, epoch, as_of, snap, entries, changed_from, rows, start, count = reply
        epoch_text = epoch.decode() if epoch else ""
        return Read(
            version=int(version or 0),
            epoch=epoch_text,
            as_of=None if as_of is None else float(as_of),
            stored=_stored(snap, epoch_text),
            entries=dict(changelog.parse(entry) for entry in entries),
            changed_from=None if changed_from == b"-inf" else float(changed_from),
            # Members are JSON arrays: join them and parse once instead of per bar.
            rows=orjson.loads(b"[" + b",".join(rows) + b"]"),
            start=None if not start else int(float(start)),
            count=int(count),
        )

    def write(
        self,
        symbol: str,
        epoch: str,
        seq: int,
        head_style: dict[str, Any],
        delta_packet: bytes,
        catchup: tuple[int, int, bytes] | None,
        payload: tuple[bytes, dict[str, Any], float] | None,
    ) -> Written:
        """Store the render and publish ``delta_packet`` to the delta room. ``catchup``:
        (the stored seq it starts from, its first minute, the ``bars`` event JSON);
        ``payload``: (the whole figure's event JSON, its style, now) to store it too."""
        k = self.keys
        rooms = [figure_room(symbol), legacy_room(symbol)]
        keys = [k.snapshot(symbol), k.room_channel(delta_room(symbol))]
        keys += [k.room_channel(room) for room in rooms]
        base, catchup_from, catchup_json = catchup if catchup is not None else (-1, 0, b"")
        payload_json, style, now = payload if payload is not None else (b"", {}, 0.0)
        args: list[str | int | bytes] = [epoch, seq, orjson.dumps(head_style), delta_packet]
        args += [base, catchup_json, payload_json, orjson.dumps(style), repr(now), catchup_from]
        outcome, figure_watchers, legacy_watchers = self._write(keys=keys, args=args)
        watchers = dict(zip(rooms, (int(figure_watchers), int(legacy_watchers)), strict=True))
        return Written(int(outcome), watchers)


def _stored(snap: list[Any], epoch: str) -> Stored:
    snap_epoch, seq, style, head, head_style, stored_at, catchup_from = snap
    if not snap_epoch or snap_epoch.decode() != epoch:
        return Stored()  # nothing rendered yet in this epoch
    return Stored(
        seq=None if seq is None else int(seq),
        style=None if style is None else orjson.loads(style),
        head=None if head is None else int(head),
        head_style=None if head_style is None else orjson.loads(head_style),
        stored_at=None if stored_at is None else float(stored_at),
        # Absent: nothing changed since the stored figure (it is the head).
        catchup_from=changelog.NOTHING_CHANGED if catchup_from is None else int(catchup_from),
    )
