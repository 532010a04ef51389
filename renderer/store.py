"""The renderer's side of the Redis contract: read what changed, write a render.

Two scripts, each one round trip and atomic, so a concurrent fetcher or renderer never
shows either of them half a state.

READ takes the epoch and version of the window the renderer holds and returns the
store's version, the symbol's market (its clock and session), the snapshot's state, the
changelog since the oldest of those, and the bars: only those from the first minute
changed since the held version when the changelog proves every version in between, or
else all of them. It also lists the symbol's other views (common.views) that gateways
stamped as watched within ``RTPLOT_WATCH_TTL``, each with how many gateways subscribe to
its rooms now (``PUBSUB NUMSUB``): a view is rendered only while that is not 0. The
state of each view's own snapshot hash is read next (``read_views``).

WRITE stores a render of one view and publishes its delta, in that order, and says who
watches the view's whole-figure rooms (``PUBSUB NUMSUB``), asked after the store so
that a subscriber this count misses reads a snapshot at least as new. Each view has a
snapshot hash of its own (``common.keys.Keys.snapshot``), which holds:

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
from common.markets import Market
from common.messages import delta_room, figure_room, legacy_room, view_room

_READ = """
local bars, meta, snap, log, views = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local held_epoch, held = ARGV[1], tonumber(ARGV[2])
local m = redis.call('HMGET', meta, 'version', 'epoch', 'as_of', 'market', 'stored_at')
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
local watched = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', views, ARGV[3], '+inf')) do
  local n = redis.call('PUBSUB', 'NUMSUB', ARGV[4] .. key, ARGV[5] .. key)
  table.insert(watched, key)
  table.insert(watched, n[2] + n[4])
end
local stale = redis.call('ZRANGEBYSCORE', views, '-inf', '(' .. ARGV[3])
return {m[1], m[2], m[5] or m[3], s, entries, tostring(from), rows, head[2] or false,
        redis.call('ZCARD', bars), m[4], watched, stale}
"""

_SNAPSHOT_FIELDS = ["epoch", "seq", "style", "head", "head_style", "stored_at", "catchup_from"]

_WRITE = """
local snap = KEYS[1]
local epoch, seq = ARGV[1], tonumber(ARGV[2])
local s = redis.call('HMGET', snap, 'epoch', 'head', 'seq')
if s[1] == epoch then
  local head = tonumber(s[2] or '-1')
  if seq < head then return {-1} end
  if seq == head then return {0} end
elseif ARGV[7] == '' then
  return {-2}
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
local counts = redis.call('PUBSUB', 'NUMSUB', unpack(KEYS, 3))
local result = {1}
for i = 2, #counts, 2 do table.insert(result, counts[i]) end
return result
"""

# A view nobody stamped for RTPLOT_WATCH_TTL is forgotten, with its snapshot, unless a
# gateway stamped it again since it was read. KEYS: views, the view's snapshot;
# ARGV: view key, cutoff.
_FORGET = """
local stamped = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '-1')
if stamped >= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""

STORED, SAME, OLDER, NEEDS_FIGURE = 1, 0, -1, -2
ROOMS = (delta_room, figure_room)  # a view's rooms whose subscribers make it watched


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
    as_of: float | None  # when this version was stored (the tick's time, from older fetchers)
    stored: Stored
    entries: dict[int, int]  # the changelog: version -> first changed minute
    changed_from: float | None  # rows are every bar from this minute; None: all bars
    rows: list[list[float]]
    start: int | None  # the store's first minute
    count: int  # bars in the store
    market: Market | None = None  # as the fetcher stored it; None: the source said nothing
    views: dict[str, int] | None = None  # view key -> gateways subscribed to its rooms
    stale_views: tuple[str, ...] = ()  # views nobody stamped within the TTL


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
        self._forget = client.register_script(_FORGET)
        self._markets: dict[bytes, Market] = {}

    def read(
        self, symbol: str, held_epoch: str = "", held_version: int = 0, views_since: float = 0.0
    ) -> Read:
        """``views_since``: the epoch second before which a view's stamp is too old."""
        k = self.keys
        keys = [k.bars(symbol), k.meta(symbol), k.snapshot(symbol), k.changelog(symbol)]
        keys.append(k.views(symbol))
        prefixes = [k.room_channel(view_room(room(symbol), "_"))[:-1] for room in ROOMS]
        reply = self._read(keys=keys, args=[held_epoch, held_version, repr(views_since), *prefixes])
        version, epoch, as_of, snap, entries, changed_from, rows, start, count = reply[:9]
        market, watched, stale = reply[9:]
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
            market=self._market(market),
            views={
                key.decode(): int(n) for key, n in zip(watched[::2], watched[1::2], strict=True)
            },
            stale_views=tuple(key.decode() for key in stale),
        )

    def _market(self, raw: bytes | None) -> Market | None:
        if not raw:
            return None
        if raw not in self._markets:
            if len(self._markets) > 1_000:
                self._markets.clear()
            self._markets[raw] = Market.decode(raw)
        return self._markets[raw]

    def read_views(self, symbol: str, epoch: str, view_keys: list[str]) -> dict[str, "Stored"]:
        """Each view's snapshot hash, as ``Read.stored`` is the default view's."""
        pipe = self.client.pipeline(transaction=False)
        for key in view_keys:
            pipe.hmget(self.keys.snapshot(symbol, key), _SNAPSHOT_FIELDS)
        replies = pipe.execute()
        return {key: _stored(snap, epoch) for key, snap in zip(view_keys, replies, strict=True)}

    def forget_view(self, symbol: str, view_key: str, cutoff: float) -> bool:
        keys = [self.keys.views(symbol), self.keys.snapshot(symbol, view_key)]
        return bool(self._forget(keys=keys, args=[view_key, repr(cutoff)]))

    def write(
        self,
        symbol: str,
        epoch: str,
        seq: int,
        head_style: dict[str, Any],
        delta_packet: bytes,
        catchup: tuple[int, int, bytes] | None,
        payload: tuple[bytes, dict[str, Any], float] | None,
        view_key: str = "",
    ) -> Written:
        """Store the render of a view (the default one: ``view_key`` "") and publish
        ``delta_packet`` to its delta room. ``catchup``: (the stored seq it starts from,
        its first minute, the ``bars`` event JSON); ``payload``: (the whole figure's event
        JSON, its style, now) to store it too."""
        k = self.keys
        rooms = [view_room(figure_room(symbol), view_key)]
        if not view_key:
            rooms.append(legacy_room(symbol))  # the article's client: the default view only
        delta_channel = k.room_channel(view_room(delta_room(symbol), view_key))
        keys = [k.snapshot(symbol, view_key), delta_channel]
        keys += [k.room_channel(room) for room in rooms]
        base, catchup_from, catchup_json = catchup if catchup is not None else (-1, 0, b"")
        payload_json, style, now = payload if payload is not None else (b"", {}, 0.0)
        args: list[str | int | bytes] = [epoch, seq, orjson.dumps(head_style), delta_packet]
        args += [base, catchup_json, payload_json, orjson.dumps(style), repr(now), catchup_from]
        outcome, *counts = self._write(keys=keys, args=args)
        watchers = {room: int(n) for room, n in zip(rooms, counts, strict=False)}
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
