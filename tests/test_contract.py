"""The contract between the processes (common/contract), held in one place: each producer
writes through its own code, each consumer reads through its own, against a real Redis.
A field, key, channel or format renamed on one side only fails here. The last test
looks for names spelled outside the contract."""

import ast
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from common.bars import MINUTE, Bar
from common.contract.fields import BackoffField, ChangeField, MetaField, SnapshotField
from common.contract.keys import CHANGES_MAXLEN, Keys
from common.contract.lua import Scripts
from common.contract.members import ChangeNotice
from common.contract.packets import figure_of, packet_event
from common.contract.rooms import Mode, Room
from common.contract.snapshots import ReadSnapshot
from common.markets import NEW_YORK
from common.settings import Settings
from common.views import View
from fetcher.store import BarStore
from fetcher.tracking import tracked_symbols
from gateway.core import snapshot_packets
from gateway.relay import AsyncRelayManager
from gateway.requests import subscription_room
from gateway.watching import watch_call, watch_view_call
from renderer.service import Renderer
from renderer.store import RenderStore
from support import ROOT

KEYS = Keys()
NOW = 1_794_999_960.0 + 10
CANDLES = View.from_key("candles.5m.vol")


def bars(*closes: float) -> list[Bar]:
    last = int(NOW) // MINUTE * MINUTE
    start = last - (len(closes) - 1) * MINUTE
    return [Bar(start + i * MINUTE, c, c + 1, c - 1, c, 10 + i) for i, c in enumerate(closes)]


class Figures:
    """The renderer's whole-figure seam, recording what it was handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, set[Room]]] = []

    def publish_figures(self, payload_json: bytes, figure_json: bytes, rooms: set[Room]) -> None:
        self.sent.append((payload_json, rooms))


def channel_of_a_join(settings: Settings, room: Room) -> str:
    """The channel a gateway subscribes to when a client joins ``room``."""
    relay = AsyncRelayManager(settings)
    relay.book.connect()
    relay.book.want(room)
    [channel], _ = relay._batch()
    return channel


def subscribed(client: "redis.Redis", channel: str) -> Any:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=0.5)
    return pubsub


def test_the_fetchers_write_is_what_the_renderer_reads(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    first = bars(100, 101, 102)
    before = time.time()
    written = store.upsert("AAPL", first, as_of=NOW, now=NOW, market=NEW_YORK)
    read = RenderStore(client, KEYS).read("AAPL")
    assert (read.version, read.count, read.start) == (written.version, 3, first[0].t)
    assert read.epoch and read.market == NEW_YORK
    assert [row[:6] for row in read.rows] == [
        [b.t, b.o, b.h, b.l, b.c, b.v] for b in first
    ]  # the bar members
    assert read.changed_from is None  # held nothing: every bar
    # The lag starts at Redis' clock when the version was stored, not the tick's time.
    assert read.as_of is not None and before - 1 < read.as_of < time.time() + 1
    assert store.heads(["AAPL"])["AAPL"].changed_at == NOW  # the fetcher's own read

    moved = Bar(first[-1].t, 102, 104, 101, 103.5, 20)
    store.upsert("AAPL", [moved], as_of=NOW + 1, now=NOW + 1)
    since = RenderStore(client, KEYS).read("AAPL", read.epoch, read.version)
    assert since.version == 2 and since.epoch == read.epoch
    # The changelog, written and read in Lua (the rows from the minute that changed) and
    # read in Python (the entries).
    assert since.entries == {2: moved.t} and since.changed_from == moved.t
    assert since.rows == [[moved.t, 102, 104, 101, 103.5, 20]]

    # Another Redis history (a restart, a failover): the fetcher starts a new epoch, and
    # the renderer takes its window whole again.
    client.set(KEYS.lineage, "another-replication-id")
    assert store.follow_lineage(["AAPL"]) == 1
    renewed = RenderStore(client, KEYS).read("AAPL", since.epoch, since.version)
    assert renewed.epoch != since.epoch and renewed.changed_from is None


def test_the_fetchers_notice_is_what_the_renderer_reads(client: "redis.Redis") -> None:
    BarStore(client, KEYS, 60).upsert("AAPL", bars(100), as_of=NOW, now=NOW)
    [(_, [(_, fields)])] = client.xread({KEYS.changes: 0})
    assert ChangeNotice.read(fields) == ChangeNotice("AAPL", version=1)
    renderer = Renderer(client, KEYS, Figures(), name="contract")
    renderer.ensure_group()
    assert renderer.step(block_ms=100).rendered == {"AAPL": 1}


def test_a_gateways_stamps_are_what_the_fetcher_and_the_renderer_read(
    client: "redis.Redis", settings: Settings
) -> None:
    scripts = Scripts(client, KEYS)
    assert scripts.run(watch_call(settings, "NVDA"))
    tracked = tracked_symbols(client, KEYS, settings.symbols, settings.watch_ttl, time.time())
    assert "NVDA" in tracked.symbols and tracked.dropped == []

    BarStore(client, KEYS, 60).upsert("NVDA", bars(50), as_of=NOW, now=NOW)
    client.delete(KEYS.changes)
    scripts.run(watch_view_call(settings, "NVDA", CANDLES.key, notify=True))
    [(_, [(_, fields)])] = client.xread({KEYS.changes: 0})
    assert ChangeNotice.read(fields) == ChangeNotice("NVDA", view=CANDLES.key)
    # Listed, and counted while a gateway holds the channel of one of its rooms.
    page = subscribed(client, channel_of_a_join(settings, Room("NVDA", Mode.DELTA, CANDLES.key)))
    read = RenderStore(client, KEYS).read("NVDA", views_since=time.time() - 60)
    assert read.views == {CANDLES.key: 1}
    page.close()


def test_a_render_is_what_a_gateway_relays_and_sends_on_subscribe(
    client: "redis.Redis", settings: Settings
) -> None:
    store = BarStore(client, KEYS, 60)
    store.upsert("AAPL", bars(100, 101), as_of=NOW, now=NOW)
    figures = Figures()
    renderer = Renderer(client, KEYS, figures, name="contract", snapshot_every=3600)
    rooms = {mode: subscription_room("AAPL", mode, View()) for mode in (Mode.FIGURE, Mode.DELTA)}
    pages = subscribed(client, channel_of_a_join(settings, rooms[Mode.DELTA]))
    assert renderer.render("AAPL") == 1
    store.upsert("AAPL", [bars(100, 101.5)[-1]], as_of=NOW + 1, now=NOW + 1)
    assert renderer.render("AAPL") == 2

    # The delta room's channel carries the renderer's packets, which the relay reads
    # without parsing them.
    heard = list(iter(lambda: pages.get_message(timeout=0.5), None))
    assert {KEYS.room_of(m["channel"]) for m in heard} == {rooms[Mode.DELTA]}
    assert [packet_event(m["data"]) for m in heard] == ["figure", "bars"]

    # A subscriber is sent the stored figure and the catch-up since it, as stored.
    snapshot = Scripts(client, KEYS).run(ReadSnapshot("AAPL"))
    assert snapshot.payload is not None and snapshot.catchup is not None
    assert orjson.loads(snapshot.payload)["seq"] == 1  # stored whole an hour apart...
    assert orjson.loads(snapshot.catchup)["seq"] == 2  # ... and caught up since
    sent = snapshot_packets(rooms[Mode.DELTA], snapshot)
    assert [packet_event(p) for p in sent] == ["figure", "bars"]
    [article] = snapshot_packets(Room("AAPL", Mode.ARTICLE), snapshot)
    _, figure_string = orjson.loads(article[1:])  # 2[...]
    assert orjson.loads(figure_string) == orjson.loads(figure_of(snapshot.payload))

    # Whole figures go to the figure room once it is watched: the store says so, after
    # it stored the render.
    viewers = subscribed(client, channel_of_a_join(settings, rooms[Mode.FIGURE]))
    store.upsert("AAPL", [bars(100, 102)[-1]], as_of=NOW + 2, now=NOW + 2)
    assert renderer.render("AAPL") == 3 and figures.sent
    [(payload, sent_to)] = figures.sent
    assert sent_to == {rooms[Mode.FIGURE]} and orjson.loads(payload)["seq"] == 3
    pages.close()
    viewers.close()


def test_a_views_render_is_stored_and_read_as_the_views_own(client: "redis.Redis") -> None:
    BarStore(client, KEYS, 60).upsert("AAPL", bars(100, 101), as_of=NOW, now=NOW)
    Scripts(client, KEYS).run(watch_view_call(Settings(), "AAPL", CANDLES.key, notify=False))
    page = subscribed(client, KEYS.channel(Room("AAPL", Mode.DELTA, CANDLES.key)))
    renderer = Renderer(client, KEYS, Figures(), name="contract")
    renderer.render("AAPL")
    read = RenderStore(client, KEYS).read("AAPL")
    states = RenderStore(client, KEYS).read_views("AAPL", read.epoch, [CANDLES.key])
    assert states[CANDLES.key].head == states[CANDLES.key].seq == 1
    assert states[CANDLES.key].style
    snapshot = Scripts(client, KEYS).run(ReadSnapshot("AAPL", CANDLES.key))
    assert snapshot.payload is not None
    assert orjson.loads(snapshot.payload)["view"] == CANDLES.key
    page.close()


# -- nothing spelled twice ---------------------------------------------------------------

# Also fields of what clients are sent (common.messages) or labels of metrics and logs:
# spelled there by right.
CLIENT_WORDS = {"symbol", "seq", "epoch", "view", "style", "head", "kind"}
FIELDS = {
    field.value
    for fields in (MetaField, SnapshotField, ChangeField, BackoffField)
    for field in fields
} - CLIENT_WORDS
KEY_PARTS = ("bars:", "meta:", "changelog:", "snapshot:", "views:", "room:", "heartbeat:")
ROOM_PARTS = tuple(f"{mode.value}:" for mode in Mode)
KEY_NAMES = {"watched", "tracked", "changes", "lineage", "renderers", "source:backoff"}
# celery-redbeat's own lock, given back by the beat (fetcher/beat.py): not rtplot's.
LUA_ELSEWHERE = {Path("fetcher/beat.py")}


def strays(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str | bytes):
            continue
        text = node.value.decode() if isinstance(node.value, bytes) else node.value
        lua = "redis.call" in text and path.relative_to(ROOT) not in LUA_ELSEWHERE
        if text in FIELDS or text in KEY_NAMES or text.startswith(KEY_PARTS + ROOM_PARTS) or lua:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:50]!r}")
    return found


def test_no_name_or_format_is_spelled_outside_the_contract() -> None:
    services = ("common", "fetcher", "renderer", "gateway", "rtplot", "bench")
    paths = [p for s in services for p in (ROOT / s).rglob("*.py")]
    paths = [p for p in paths if p.relative_to(ROOT).parts[:2] != ("common", "contract")]
    assert len(paths) > 50
    assert [stray for path in paths for stray in strays(path)] == []


def test_no_room_or_key_is_spelled_in_javascript() -> None:
    """The page asks by symbol and view, and bench.fanout hands its reference peer the
    room names: a string literal starting with a room or key part is a stray."""
    paths = [*(ROOT / "gateway" / "static").glob("*.js"), *(ROOT / "bench").rglob("*.mjs")]
    paths = [p for p in paths if not p.name.endswith(".min.js")]
    assert paths
    parts = "|".join(map(re.escape, KEY_PARTS + ROOM_PARTS))
    quoted = re.compile(f"[\"'`]({parts})")
    strays = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:60]}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if quoted.search(line)
    ]
    assert strays == []


def test_the_stray_finder_finds_strays(tmp_path: Path) -> None:
    sample = ROOT / "tests" / "stray_sample.py"
    sample.write_text(
        "a = client.hget(key, 'as_of')\n"
        "b = f'figure:{symbol}'\n"
        "c = \"redis.call('GET', KEYS[1])\"\n"
        "d = {'symbol': s, 'seq': 1}\n"
    )
    try:
        assert sorted(line.split(":")[1] for line in strays(sample)) == ["1", "2", "3"]
    finally:
        sample.unlink()


def test_the_scripts_take_their_arguments_by_name() -> None:
    call = watch_view_call(Settings(), "AAPL", CANDLES.key, notify=True)
    keys, args = call.lua.call(call.keys(KEYS), call.args(KEYS))
    assert keys == [KEYS.views("AAPL"), KEYS.watched_views, KEYS.changes]
    assert args[:3] == [CANDLES.key, f"AAPL@{CANDLES.key}", call.now]
    assert args[-3:] == [1, "AAPL", CHANGES_MAXLEN]
    with pytest.raises(TypeError, match="takes"):
        call.lua.call(call.keys(KEYS), {"view": CANDLES.key})  # one left out
    # The names sit at the script's top, after the fields it uses.
    assert "local views = KEYS[1]" in call.lua.source
    assert "local CHANGE = {symbol = 'symbol'" in call.lua.source
    assert "local META" not in call.lua.source  # it uses none of the meta fields
