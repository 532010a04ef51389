"""Renders and their snapshots: the renderer's read of what changed and write of a
render, and the gateways' read of a snapshot. Each is one script call, atomic, so a
concurrent fetcher or renderer never shows another half a state.

``ReadWindow`` takes the epoch and version of the window the renderer holds and returns
the store's version, the symbol's market (its clock and session), the snapshot's state,
the changelog since the oldest of those, and the bars: only those from the first minute
changed since the held version when the changelog proves every version in between, or
else all of them. It also lists the symbol's other views (common.views) that gateways
stamped as watched within ``RTPLOT_WATCH_TTL``, each with how many gateways subscribe to
its rooms now: a view is rendered only while that is not 0. The state of each view's
own snapshot hash is read next (``read_view_states``).

``WriteRender`` stores a render of one view and publishes its delta, in that order,
appends the delta to the view's log (``Keys.deltas``, the last ``resume_length``
renders, for clients that resume from a seq they held: ``ReadResume``), and says who
watches the view's whole-figure rooms, asked after the store so that a
subscriber this count misses reads a snapshot at least as new. What a snapshot hash
holds is ``fields.SnapshotField``: the newest render's seq and look (``head``), the
newest whole figure stored (``seq``, ``payload``), written at most every
``RTPLOT_SNAPSHOT_EVERY`` seconds, and the ``catchup`` from it to the head.

``ReadSnapshot`` is a gateway's: the stored figure and its catch-up, which together are
the newest render.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

import orjson
import redis

from common.contract.changelog import NOTHING_CHANGED
from common.contract.changelog import parse as parse_entry
from common.contract.fields import SnapshotField
from common.contract.keys import Keys
from common.contract.lua import ArgArgs, KeyArgs, Lua, ScriptCall
from common.contract.members import bar_rows
from common.contract.rooms import WATCHING_MODES, Mode, Room, whole_figure_rooms
from common.markets import Market

# A snapshot's state as a renderer reads it, in this order.
RENDER_STATE = (
    SnapshotField.EPOCH,
    SnapshotField.SEQ,
    SnapshotField.STYLE,
    SnapshotField.HEAD,
    SnapshotField.HEAD_STYLE,
    SnapshotField.STORED_AT,
    SnapshotField.CATCHUP_FROM,
)

READ_WINDOW = Lua(
    keys=("bars", "meta", "snapshot", "changelog", "views"),
    args=("held_epoch", "held_version", "views_since", "*watching"),  # rest: channel prefixes
    lists={"RENDER_STATE": RENDER_STATE},
    returns=(
        "version",
        "epoch",
        "stored_at",
        "state",
        "entries",
        "changed_from",
        "rows",
        "start",
        "count",
        "market",
        "views",
        "stale_views",
        "history",
    ),
    body="""
local held = tonumber(held_version)
local m = redis.call('HMGET', meta, META.version, META.epoch, META.as_of, META.market,
                     META.stored_at, META.history)
local version = tonumber(m[1] or '0')
local s = redis.call('HMGET', snapshot, unpack(RENDER_STATE))
local state = {}
for i, name in ipairs(RENDER_STATE) do state[name] = s[i] end
local same = m[2] ~= false and m[2] == held_epoch and held <= version
local since = version
if same then since = math.min(since, held) end
if state[SNAP.epoch] and state[SNAP.epoch] == m[2] then
  since = math.min(since, tonumber(state[SNAP.seq] or version),
                   tonumber(state[SNAP.head] or version))
end
local entries = redis.call('ZRANGEBYSCORE', changelog, '(' .. since, '+inf')
local from = '-inf'
if same then
  local logged, first = 0, nil
  for _, entry in ipairs(entries) do
    local v, minute = changelog_parse(entry)
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
for _, key in ipairs(redis.call('ZRANGEBYSCORE', views, views_since, '+inf')) do
  local channels = {}
  for i = watching, #ARGV do table.insert(channels, ARGV[i] .. key) end
  local gateways = 0
  for _, n in ipairs(subscribers(channels)) do gateways = gateways + n end
  table.insert(watched, key)
  table.insert(watched, gateways)
end
return reply({
  version = m[1], epoch = m[2], stored_at = m[5] or m[3], state = s, entries = entries,
  changed_from = tostring(from), rows = rows, start = head[2], count = redis.call('ZCARD', bars),
  market = m[4], views = watched,
  stale_views = redis.call('ZRANGEBYSCORE', views, '-inf', '(' .. views_since),
  history = m[6],
})
""",
)


@dataclass(frozen=True)
class Stored:
    """What a view's snapshot hash held when the window was read (this epoch only)."""

    seq: int | None = None
    style: dict[str, Any] | None = None
    head: int | None = None
    head_style: dict[str, Any] | None = None
    stored_at: float | None = None
    catchup_from: int = NOTHING_CHANGED  # first minute changed since ``seq``


@dataclass(frozen=True)
class Newest:
    epoch: str  # "" while nothing is rendered
    head: int  # the seq of the newest render; 0 while nothing is rendered


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
    history: int = 0  # the version of its history (common.contract.history); 0: none


@dataclass(frozen=True)
class ReadWindow(ScriptCall[Read]):
    """``held_epoch``/``held_version``: the window the renderer holds ("", 0: none);
    ``views_since``: the epoch second before which a view's stamp is too old."""

    lua = READ_WINDOW
    symbol: str
    held_epoch: str = ""
    held_version: int = 0
    views_since: float = 0.0

    def keys(self, keys: Keys) -> KeyArgs:
        s = self.symbol
        return {
            "bars": keys.bars(s),
            "meta": keys.meta(s),
            "snapshot": keys.snapshot(s),
            "changelog": keys.changelog(s),
            "views": keys.views(s),
        }

    def args(self, keys: Keys) -> ArgArgs:
        return {
            "held_epoch": self.held_epoch,
            "held_version": self.held_version,
            "views_since": repr(self.views_since),
            "watching": [keys.views_channel_prefix(self.symbol, m) for m in WATCHING_MODES],
        }

    def reply(self, raw: Any) -> Read:
        got = READ_WINDOW.named(raw)
        epoch = got["epoch"].decode() if got["epoch"] else ""
        watched, changed_from, start = got["views"], got["changed_from"], got["start"]
        return Read(
            version=int(got["version"] or 0),
            epoch=epoch,
            as_of=None if got["stored_at"] is None else float(got["stored_at"]),
            stored=stored_state(got["state"], epoch),
            entries=dict(parse_entry(entry) for entry in got["entries"]),
            changed_from=None if changed_from == b"-inf" else float(changed_from),
            rows=bar_rows(got["rows"]),
            start=None if not start else int(float(start)),
            count=int(got["count"]),
            market=_market(got["market"]) if got["market"] else None,
            views={
                key.decode(): int(n) for key, n in zip(watched[::2], watched[1::2], strict=True)
            },
            stale_views=tuple(key.decode() for key in got["stale_views"]),
            history=int(got["history"] or 0),
        )


@lru_cache(maxsize=1024)
def _market(raw: bytes) -> Market:
    return Market.decode(raw)  # the same few markets, read at every render


def stored_state(state: Sequence[Any], epoch: str) -> Stored:
    """A snapshot's ``RENDER_STATE`` as read; empty unless it is of ``epoch``."""
    snap_epoch, seq, style, head, head_style, stored_at, catchup_from = state
    if not snap_epoch or snap_epoch.decode() != epoch:
        return Stored()  # nothing rendered yet in this epoch
    return Stored(
        seq=None if seq is None else int(seq),
        style=None if style is None else orjson.loads(style),
        head=None if head is None else int(head),
        head_style=None if head_style is None else orjson.loads(head_style),
        stored_at=None if stored_at is None else float(stored_at),
        # Absent: nothing changed since the stored figure (it is the head).
        catchup_from=NOTHING_CHANGED if catchup_from is None else int(catchup_from),
    )


def read_view_states(
    client: "redis.Redis", keys: Keys, symbol: str, epoch: str, views: Sequence[str]
) -> dict[str, Stored]:
    """Each view's snapshot state, as ``Read.stored`` is the default view's."""
    pipe = client.pipeline(transaction=False)
    for view in views:
        pipe.hmget(keys.snapshot(symbol, view), RENDER_STATE)
    replies = pipe.execute()
    return {view: stored_state(state, epoch) for view, state in zip(views, replies, strict=True)}


def read_newest(client: "redis.Redis", keys: Keys, symbols: Sequence[str]) -> dict[str, Newest]:
    """Each symbol's newest render of its default view (for tools and benchmarks)."""
    pipe = client.pipeline(transaction=False)
    for symbol in symbols:
        pipe.hmget(keys.snapshot(symbol), [SnapshotField.EPOCH, SnapshotField.HEAD])
    return {
        symbol: Newest((epoch or b"").decode(), int(head or 0))
        for symbol, (epoch, head) in zip(symbols, pipe.execute(), strict=True)
    }


# -- writing a render ---------------------------------------------------------------------


class Outcome(IntEnum):
    STORED = 1
    SAME = 0  # a render of this seq is stored already
    OLDER = -1  # a newer render is stored already
    NEEDS_FIGURE = -2  # the snapshot is of another epoch, or gone: store a whole figure


WRITE_RENDER = Lua(
    keys=("snapshot", "deltas", "delta_channel", "*figure_channels"),
    args=(
        "epoch",
        "seq",
        "head_style",
        "packet",
        "catchup_base",
        "catchup",
        "payload",
        "style",
        "stored_at",
        "catchup_from",
        "delta",
        "resume_length",
    ),
    returns=("outcome", "watchers"),
    body="""
local s = redis.call('HMGET', snapshot, SNAP.epoch, SNAP.head, SNAP.seq)
if s[1] == epoch then
  local head = tonumber(s[2] or '-1')
  if tonumber(seq) < head then return reply({outcome = OUTCOME.older}) end
  if tonumber(seq) == head then return reply({outcome = OUTCOME.same}) end
elseif payload == '' then
  return reply({outcome = OUTCOME.needs_figure})
else
  redis.call('DEL', snapshot, deltas)  -- another epoch: no client can resume across it
end
redis.call('HSET', snapshot, SNAP.epoch, epoch, SNAP.head, seq, SNAP.head_style, head_style)
if payload ~= '' then
  redis.call('HSET', snapshot, SNAP.seq, seq, SNAP.payload, payload, SNAP.style, style,
             SNAP.stored_at, stored_at)
  redis.call('HDEL', snapshot, SNAP.catchup, SNAP.catchup_from)
elseif s[3] ~= false and tonumber(s[3]) == tonumber(catchup_base) then
  redis.call('HSET', snapshot, SNAP.catchup, catchup, SNAP.catchup_from, catchup_from)
else
  redis.call('HDEL', snapshot, SNAP.catchup, SNAP.catchup_from)
end
redis.call('PUBLISH', delta_channel, packet)
if delta ~= '' then
  redis.call('ZADD', deltas, seq, delta)
  redis.call('ZREMRANGEBYRANK', deltas, 0, -1 - tonumber(resume_length))
end
local channels = {}
for i = figure_channels, #KEYS do table.insert(channels, KEYS[i]) end
return reply({outcome = OUTCOME.stored, watchers = subscribers(channels)})
""",
    tables={"OUTCOME": {o.name.lower(): o.value for o in Outcome}},
)


@dataclass(frozen=True)
class Catchup:
    """The ``bars`` event from the stored whole figure to this render."""

    base_seq: int  # the stored figure's seq it starts from
    first_minute: int  # the first minute any render since that figure changed
    event_json: bytes


@dataclass(frozen=True)
class Whole:
    """A whole figure to store."""

    payload_json: bytes  # its ``figure`` event payload (packets.figure_payload)
    style: dict[str, Any]
    stored_at: float  # epoch s


@dataclass(frozen=True)
class Written:
    outcome: Outcome
    watchers: dict[Room, int]  # whole-figure room -> gateways subscribed


@dataclass(frozen=True)
class WriteRender(ScriptCall[Written]):
    """Store a render of a view ("" the default one) and publish ``packet`` to its delta
    room. Either ``whole`` (a whole figure to store) or ``catchup`` (from the stored one
    to this render); with neither, the stored figure's catch-up is dropped. ``delta``
    (the ``bars`` payload in ``packet``, None when the packet is a whole figure) joins
    the view's log, which keeps the last ``resume_length``."""

    lua = WRITE_RENDER
    symbol: str
    view: str
    epoch: str
    seq: int
    head_style: dict[str, Any]
    packet: bytes  # the event the delta room's clients get
    catchup: Catchup | None = None
    whole: Whole | None = None
    delta: bytes | None = None
    resume_length: int = 0

    @property
    def figure_rooms(self) -> tuple[Room, ...]:
        return whole_figure_rooms(self.symbol, self.view)

    def keys(self, keys: Keys) -> KeyArgs:
        return {
            "snapshot": keys.snapshot(self.symbol, self.view),
            "deltas": keys.deltas(self.symbol, self.view),
            "delta_channel": keys.channel(Room(self.symbol, Mode.DELTA, self.view)),
            "figure_channels": [keys.channel(room) for room in self.figure_rooms],
        }

    def args(self, keys: Keys) -> ArgArgs:
        catchup, whole = self.catchup, self.whole
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "head_style": orjson.dumps(self.head_style),
            "packet": self.packet,
            "catchup_base": -1 if catchup is None else catchup.base_seq,
            "catchup": b"" if catchup is None else catchup.event_json,
            "catchup_from": 0 if catchup is None else catchup.first_minute,
            "payload": b"" if whole is None else whole.payload_json,
            "style": orjson.dumps({} if whole is None else whole.style),
            "stored_at": repr(0.0 if whole is None else whole.stored_at),
            "delta": b"" if self.delta is None or not self.resume_length else self.delta,
            "resume_length": self.resume_length,
        }

    def reply(self, raw: Any) -> Written:
        got = WRITE_RENDER.named(raw)
        counts = got["watchers"] or []
        watchers = {room: int(n) for room, n in zip(self.figure_rooms, counts, strict=False)}
        return Written(Outcome(got["outcome"]), watchers)


# A view nobody stamped for RTPLOT_WATCH_TTL is forgotten, with its snapshot, unless a
# gateway stamped it again since it was read.
FORGET_VIEW = Lua(
    keys=("views", "snapshot", "deltas"),
    args=("view", "cutoff"),
    body="""
local stamped = tonumber(redis.call('ZSCORE', views, view) or '-1')
if stamped >= tonumber(cutoff) then return 0 end
redis.call('ZREM', views, view)
redis.call('DEL', snapshot, deltas)
return 1
""",
)


@dataclass(frozen=True)
class ForgetView(ScriptCall[bool]):
    lua = FORGET_VIEW
    symbol: str
    view: str
    cutoff: float  # stamped before this epoch second: forgotten

    def keys(self, keys: Keys) -> KeyArgs:
        return {
            "views": keys.views(self.symbol),
            "snapshot": keys.snapshot(self.symbol, self.view),
            "deltas": keys.deltas(self.symbol, self.view),
        }

    def args(self, keys: Keys) -> ArgArgs:
        return {"view": self.view, "cutoff": repr(self.cutoff)}

    def reply(self, raw: Any) -> bool:
        return bool(raw)


# -- a gateway's read ---------------------------------------------------------------------

READ_SNAPSHOT = Lua(
    keys=("snapshot",),
    args=(),
    returns=("payload", "catchup"),
    body="""
local s = redis.call('HMGET', snapshot, SNAP.payload, SNAP.catchup)
return reply({payload = s[1], catchup = s[2]})
""",
)


@dataclass(frozen=True)
class Snapshot:
    """A view's snapshot as a subscriber is sent it: the ``figure`` event payload of the
    newest whole figure stored, and the ``bars`` event from it to the newest render."""

    payload: bytes | None
    catchup: bytes | None = None


@dataclass(frozen=True)
class ReadSnapshot(ScriptCall[Snapshot]):
    lua = READ_SNAPSHOT
    symbol: str
    view: str = ""

    def keys(self, keys: Keys) -> KeyArgs:
        return {"snapshot": keys.snapshot(self.symbol, self.view)}

    def args(self, keys: Keys) -> ArgArgs:
        return {}

    def reply(self, raw: Any) -> Snapshot:
        got = READ_SNAPSHOT.named(raw)
        return Snapshot(got["payload"], got["catchup"])
