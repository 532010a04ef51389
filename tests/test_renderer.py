"""The renderer against a real Redis: one render per change whatever the burst, a seq
that never goes backwards, work shared and recovered between renderers, whole figures
stored at most every RTPLOT_SNAPSHOT_EVERY and published only where watched."""

import time
from typing import Any

import orjson
import pytest
import redis
from prometheus_client import REGISTRY

from common.bars import MINUTE, Bar
from common.contract.keys import RENDER_GROUP, Keys
from common.contract.lua import Scripts
from common.contract.members import ChangeNotice
from common.contract.rooms import Mode, Room
from common.contract.snapshots import Outcome, Whole, WriteRender
from common.contract.watching import WatchView
from common.markets import NEW_YORK, UTC
from fetcher.store import BarStore
from renderer import service
from renderer.metrics import VIEW_RENDERS
from renderer.service import Renderer
from renderer.store import RenderStore

NOW = 1_794_999_960.0 + 10
KEYS = Keys()
STYLE = {"color": "lime", "y_range": [1.0, 2.0]}


class FakePublisher:
    """The whole-figure seam; the real one is proven in test_publish.py."""

    def __init__(self) -> None:
        self.figures: list[tuple[str, int, set[Room]]] = []

    def publish_figures(self, payload_json: bytes, figure_json: bytes, rooms: set[Room]) -> None:
        payload = orjson.loads(payload_json)
        assert orjson.loads(figure_json) == payload["figure"]
        self.figures.append((payload["symbol"], payload["seq"], rooms))


def write(client: "redis.Redis", symbol: str, close: float, at: float, minutes: int = 60) -> int:
    t = int(at) // MINUTE * MINUTE
    result = BarStore(client, KEYS, minutes).upsert(
        symbol, [Bar(t, close, close + 1, close - 1, close, 1)], as_of=at, now=at
    )
    return result.version


def renderer(
    client: "redis.Redis", name: str = "r1", snapshot_every: float = 0.0
) -> tuple[Renderer, FakePublisher]:
    publisher = FakePublisher()
    instance = Renderer(client, KEYS, publisher, name=name, snapshot_every=snapshot_every)
    instance.ensure_group()
    return instance, publisher


def snapshot(client: "redis.Redis", symbol: str) -> dict[bytes, bytes]:
    return client.hgetall(KEYS.snapshot(symbol))  # type: ignore[return-value]


def test_a_burst_of_changes_is_one_render_of_the_latest_state(client: "redis.Redis") -> None:
    for i in range(5):
        write(client, "AAPL", 100 + i, NOW + i)
    write(client, "MSFT", 50, NOW)
    instance, _ = renderer(client)
    report = instance.step(block_ms=100)
    assert report.notices == 6
    assert report.rendered == {"AAPL": 5, "MSFT": 1}
    payload = orjson.loads(snapshot(client, "AAPL")[b"payload"])
    assert payload["seq"] == 5 and payload["symbol"] == "AAPL" and payload["epoch"]
    assert payload["figure"]["data"][0]["y"] == [104]
    assert client.xpending(KEYS.changes, RENDER_GROUP)["pending"] == 0  # all acked


def test_the_lag_runs_from_the_bars_being_stored_not_from_the_ticks_time(
    client: "redis.Redis",
) -> None:
    # A tick's time is when the source was asked; the write may come much later (500
    # symbols fetched, then stored one by one). NOW is days before the wall clock.
    write(client, "AAPL", 100, NOW)
    instance, _ = renderer(client)
    before = REGISTRY.get_sample_value("rtplot_renderer_lag_seconds_sum") or 0.0
    count = REGISTRY.get_sample_value("rtplot_renderer_lag_seconds_count") or 0.0
    assert instance.render("AAPL") == 1
    assert REGISTRY.get_sample_value("rtplot_renderer_lag_seconds_count") == count + 1
    lag = (REGISTRY.get_sample_value("rtplot_renderer_lag_seconds_sum") or 0.0) - before
    assert 0 <= lag < 5, lag


def test_the_seq_only_grows(client: "redis.Redis") -> None:
    store = RenderStore(client, KEYS)

    def render(seq: int) -> Outcome:
        whole = Whole(b"{}", STYLE, 0.0)
        return store.write(WriteRender("X", "", "e1", seq, STYLE, b"2[]", whole=whole)).outcome

    stored, same, older = Outcome.STORED, Outcome.SAME, Outcome.OLDER
    assert [render(5), render(5), render(4), render(6)] == [stored, same, older, stored]
    assert snapshot(client, "X")[b"head"] == b"6"


def test_a_repeated_render_publishes_nothing(client: "redis.Redis") -> None:
    write(client, "AAPL", 100, NOW)
    instance, _ = renderer(client)
    assert instance.render("AAPL") == 1
    assert instance.render("AAPL") is None


def test_renderers_share_the_work(client: "redis.Redis") -> None:
    first, _ = renderer(client, "r1")
    second, _ = renderer(client, "r2")
    write(client, "AAPL", 100, NOW)
    assert first.step(block_ms=100).rendered == {"AAPL": 1}
    write(client, "MSFT", 100, NOW)
    assert second.step(block_ms=100).rendered == {"MSFT": 1}


def test_a_notice_left_by_a_dead_renderer_is_claimed_and_rendered(
    client: "redis.Redis", monkeypatch: Any
) -> None:
    monkeypatch.setattr(service, "CLAIM_IDLE_MS", 300)
    write(client, "AAPL", 100, NOW)
    renderer(client)  # creates the group
    # A renderer reads the notice, then dies before rendering or acknowledging it.
    client.xreadgroup(RENDER_GROUP, "dead", {KEYS.changes: ">"}, count=10)
    survivor, _ = renderer(client, "survivor")
    assert survivor.step(block_ms=10).notices == 0  # not idle long enough to claim
    time.sleep(0.4)
    survivor._last_claim = 0.0  # due for another look
    report = survivor.step(block_ms=10)
    assert report.rendered == {"AAPL": 1}
    assert client.xpending(KEYS.changes, RENDER_GROUP)["pending"] == 0


def test_nothing_is_rendered_for_a_symbol_without_bars(client: "redis.Redis") -> None:
    instance, _ = renderer(client)
    client.xadd(KEYS.changes, {"symbol": "GONE", "version": 3})
    assert instance.step(block_ms=10).notices == 1
    assert not client.exists(KEYS.snapshot("GONE"))


def test_a_render_reads_only_the_bars_that_changed(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, 600)
    bars = [Bar(int(NOW) // 60 * 60 - 60 * i, 10, 11, 9, 10, 1) for i in range(300)]
    store.upsert("AAPL", bars, as_of=NOW, now=NOW)
    instance, _ = renderer(client)
    instance.render("AAPL")
    write(client, "AAPL", 12, NOW + 1, minutes=600)  # the minute in progress moves
    read = instance.store.read("AAPL")
    assert len(read.rows) == 300  # what a renderer holding nothing reads
    held = instance.windows["AAPL"]
    read = instance.store.read("AAPL", held.epoch, held.version)
    assert len(read.rows) == 1 and read.changed_from == int(NOW) // 60 * 60
    assert instance.render("AAPL") == 2
    assert instance.windows["AAPL"].rows[-1].tolist()[4] == 12


def test_whole_figures_are_stored_at_most_every_snapshot_interval(client: "redis.Redis") -> None:
    instance, _ = renderer(client, snapshot_every=3600)
    write(client, "AAPL", 100, NOW)
    instance.render("AAPL")
    write(client, "AAPL", 101, NOW + 1)
    instance.render("AAPL")
    write(client, "AAPL", 102, NOW + 2)
    instance.render("AAPL")
    stored = snapshot(client, "AAPL")
    assert (stored[b"seq"], stored[b"head"]) == (b"1", b"3")
    catchup = orjson.loads(stored[b"catchup"])
    assert (catchup["base_seq"], catchup["seq"]) == (1, 3)
    assert catchup["bars"][-1][4] == 102
    instance.snapshot_every = 0  # due now: the whole figure again, and no catch-up
    write(client, "AAPL", 103, NOW + 3)
    instance.render("AAPL")
    stored = snapshot(client, "AAPL")
    assert (stored[b"seq"], stored[b"head"]) == (b"4", b"4") and b"catchup" not in stored


def test_while_whole_figures_are_watched_each_one_is_stored_too(client: "redis.Redis") -> None:
    # A figure-mode client that resubscribes gets the stored figure: with whole figures
    # watched it is the newest, never older than the live ones it has already seen.
    instance, publisher = renderer(client, snapshot_every=3600)
    viewers = client.pubsub()
    viewers.subscribe(KEYS.channel(Room("AAPL")))
    viewers.get_message(timeout=0.5)
    for i in range(4):
        write(client, "AAPL", 100 + i, NOW + i)
        instance.render("AAPL")
        assert snapshot(client, "AAPL")[b"seq"] == str(i + 1).encode()
    assert [seq for _, seq, _ in publisher.figures] == [1, 2, 3, 4]
    viewers.unsubscribe()
    viewers.get_message(timeout=0.5)
    # Nobody takes whole figures: the next render still stores whole (the last one found
    # them watched), then back to every snapshot_every.
    for i in range(4, 7):
        write(client, "AAPL", 100 + i, NOW + i)
        instance.render("AAPL")
    assert snapshot(client, "AAPL")[b"seq"] == b"5"


def test_the_delta_always_goes_out_and_whole_figures_only_where_watched(
    client: "redis.Redis",
) -> None:
    instance, publisher = renderer(client)
    pages = client.pubsub()
    pages.subscribe(KEYS.channel(Room("AAPL", Mode.DELTA)))
    write(client, "AAPL", 100, NOW)
    instance.render("AAPL")
    write(client, "AAPL", 101, NOW + 1)
    instance.render("AAPL")
    assert publisher.figures == []
    events = [m["data"] for m in iter(lambda: pages.get_message(timeout=0.5), None)]
    sent = [orjson.loads(e[1:]) for e in events if isinstance(e, bytes)]
    assert [(name, body["seq"]) for name, body in sent] == [("figure", 1), ("bars", 2)]
    viewers = client.pubsub()
    viewers.subscribe(KEYS.channel(Room("AAPL")))
    viewers.get_message(timeout=0.5)
    write(client, "AAPL", 102, NOW + 2)
    instance.render("AAPL")
    assert publisher.figures == [("AAPL", 3, {Room("AAPL")})]


@pytest.mark.parametrize("restart", [False, True])
def test_a_store_emptied_starts_a_new_epoch(client: "redis.Redis", restart: bool) -> None:
    instance, _ = renderer(client)
    write(client, "AAPL", 100, NOW)
    instance.render("AAPL")
    first = orjson.loads(snapshot(client, "AAPL")[b"payload"])["epoch"]
    client.flushall()
    instance.ensure_group()
    if restart:
        instance, _ = renderer(client)
    write(client, "AAPL", 90, NOW + 5)
    assert instance.render("AAPL") == 1
    payload = orjson.loads(snapshot(client, "AAPL")[b"payload"])
    assert payload["epoch"] != first and payload["figure"]["data"][0]["y"] == [90]


def test_the_catch_up_outlives_the_changelog(client: "redis.Redis") -> None:
    """More versions since the stored figure than the changelog keeps: each render moved
    the catch-up's first minute, so the whole figure is still not needed."""
    instance, _ = renderer(client, snapshot_every=3600)
    write(client, "AAPL", 100, NOW)
    instance.render("AAPL")
    for i in range(1, 150):  # the changelog keeps 100 versions
        write(client, "AAPL", 100 + i / 100, NOW + i / 1000)
        instance.render("AAPL")
    stored = snapshot(client, "AAPL")
    assert (stored[b"seq"], stored[b"head"]) == (b"1", b"150")
    catchup = orjson.loads(stored[b"catchup"])
    assert (catchup["base_seq"], catchup["seq"], len(catchup["bars"])) == (1, 150, 1)


# -- views ---------------------------------------------------------------------------

CANDLES = "candles.5m.vol"


def watch(client: "redis.Redis", view: str, at: float | None = None) -> None:
    """What a gateway does when a client joins a view: list it, stamped now."""
    stamp = WatchView("AAPL", view, time.time() if at is None else at, notify=False)
    Scripts(client, KEYS).run(stamp)


def listen(client: "redis.Redis", room: Room) -> Any:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(KEYS.channel(room))
    pubsub.get_message(timeout=0.5)
    return pubsub


def test_a_watched_view_is_rendered_once_per_change_whatever_its_viewers(
    client: "redis.Redis",
) -> None:
    instance, publisher = renderer(client)
    watch(client, CANDLES)
    pages = [listen(client, Room("AAPL", Mode.DELTA, CANDLES)) for _ in range(3)]
    viewer = listen(client, Room("AAPL", Mode.FIGURE, CANDLES))
    before = VIEW_RENDERS._value.get()
    write(client, "AAPL", 100, NOW)
    instance.render("AAPL")
    write(client, "AAPL", 101, NOW + 1)
    instance.render("AAPL")
    assert VIEW_RENDERS._value.get() - before == 2  # two changes, two renders, four viewers
    stored = snapshot(client, f"AAPL@{CANDLES}")
    assert stored[b"head"] == b"2" and orjson.loads(stored[b"payload"])["view"] == CANDLES
    for page in pages:
        events = [
            orjson.loads(m["data"][1:])
            for m in iter(lambda p=page: p.get_message(timeout=0.2), None)
        ]
        assert [(name, body["view"], body["seq"]) for name, body in events] == [
            ("figure", CANDLES, 1),
            ("bars", CANDLES, 2),
        ]
    assert [(seq, rooms) for _, seq, rooms in publisher.figures] == [
        (1, {Room("AAPL", Mode.FIGURE, CANDLES)}),
        (2, {Room("AAPL", Mode.FIGURE, CANDLES)}),
    ]
    for pubsub in [*pages, viewer]:
        pubsub.close()


def test_a_view_nobody_receives_now_is_not_rendered(client: "redis.Redis") -> None:
    instance, _ = renderer(client)
    watch(client, CANDLES)  # listed, but no gateway subscribes to its rooms any more
    write(client, "AAPL", 100, NOW)
    assert instance.render("AAPL") == 1
    assert snapshot(client, "AAPL") and not snapshot(client, f"AAPL@{CANDLES}")


def test_a_view_not_stamped_for_the_ttl_is_forgotten_with_its_snapshot(
    client: "redis.Redis",
) -> None:
    instance, _ = renderer(client)
    instance.watch_ttl = 60
    watch(client, CANDLES)
    page = listen(client, Room("AAPL", Mode.DELTA, CANDLES))
    write(client, "AAPL", 100, NOW)
    instance.render("AAPL")
    assert snapshot(client, f"AAPL@{CANDLES}")
    watch(client, CANDLES, at=time.time() - 61)  # the last gateway stopped stamping it
    write(client, "AAPL", 101, NOW + 1)
    instance.render("AAPL")
    assert not snapshot(client, f"AAPL@{CANDLES}")
    assert client.zcard(KEYS.views("AAPL")) == 0
    page.close()


def test_a_view_joined_while_nothing_changes_is_rendered_on_the_gateways_notice(
    client: "redis.Redis",
) -> None:
    instance, _ = renderer(client)
    write(client, "AAPL", 100, NOW)
    assert instance.step(block_ms=100).rendered == {"AAPL": 1}
    page = listen(client, Room("AAPL", Mode.DELTA, CANDLES))
    watch(client, CANDLES)
    client.xadd(KEYS.changes, ChangeNotice("AAPL", view=CANDLES).fields())  # as WatchView
    assert instance.step(block_ms=100).rendered == {}  # nothing new in the default view
    [message] = list(iter(lambda: page.get_message(timeout=0.2), None))
    assert orjson.loads(message["data"][1:])[0] == "figure"
    assert snapshot(client, f"AAPL@{CANDLES}")[b"head"] == b"1"
    page.close()


def test_the_clock_is_the_markets_and_a_new_market_starts_a_new_epoch(
    client: "redis.Redis",
) -> None:
    instance, _ = renderer(client)
    minute = int(NOW) // MINUTE * MINUTE
    store = BarStore(client, KEYS, 60)
    store.upsert("AAPL", [Bar(minute, 1, 1, 1, 1, 1)], as_of=NOW, now=NOW, market=UTC)
    instance.render("AAPL")
    first = orjson.loads(snapshot(client, "AAPL")[b"payload"])
    assert first["figure"]["data"][0]["x"] == [minute * 1000]
    assert first["figure"]["layout"]["xaxis"]["title"]["text"] == "Time (UTC)"
    store.upsert("AAPL", [], as_of=NOW + 1, now=NOW + 1, market=NEW_YORK)
    assert instance.render("AAPL") == 2
    moved = orjson.loads(snapshot(client, "AAPL")[b"payload"])
    assert moved["epoch"] != first["epoch"]
    assert moved["figure"]["data"][0]["x"] == [(minute - 5 * 3600) * 1000]  # New York, EST
    assert moved["figure"]["layout"]["xaxis"]["title"]["text"] == "Time (New York)"


BUILD = Renderer._build


def failing_build(broken: Any) -> Any:
    """Renderer._build, failing for the charts ``broken`` picks: a bug met on some bars."""

    def build_or_fail(self: Renderer, chart: Any, read: Any, stored: Any) -> Any:
        if broken(chart):
            raise ValueError("a bug met on these bars")
        return BUILD(self, chart, read, stored)

    return build_or_fail


def test_a_render_that_fails_stops_neither_the_others_nor_the_renderer(
    client: "redis.Redis", monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    instance, _ = renderer(client)
    watch(client, CANDLES)
    viewer = listen(client, Room("AAPL", Mode.DELTA, CANDLES))
    monkeypatch.setattr(
        Renderer, "_build", failing_build(lambda c: c.symbol == "BAD" or c.key == CANDLES)
    )
    errors = REGISTRY.get_sample_value("rtplot_renderer_render_errors_total") or 0.0
    write(client, "BAD", 10, NOW)
    write(client, "AAPL", 100, NOW)
    write(client, "MSFT", 50, NOW)
    report = instance.step(block_ms=100)
    # BAD's chart and AAPL's candles failed; everything else went out, and every
    # notice was acknowledged (not claimed again to fail again).
    assert report.rendered == {"AAPL": 1, "MSFT": 1}
    assert client.xpending(KEYS.changes, RENDER_GROUP)["pending"] == 0
    assert REGISTRY.get_sample_value("rtplot_renderer_render_errors_total") == errors + 2
    failed = [(r.symbol, r.view) for r in caplog.records if r.message == "render failed"]
    assert failed == [("BAD", "default"), ("AAPL", CANDLES)]
    assert all(r.exc_info for r in caplog.records if r.message == "render failed")
    # Mended (a release with the fix), the next change renders them.
    monkeypatch.setattr(Renderer, "_build", failing_build(lambda c: False))
    write(client, "BAD", 11, NOW + 1)
    write(client, "AAPL", 101, NOW + 1)
    assert instance.step(block_ms=100).rendered == {"BAD": 2, "AAPL": 2}
    assert snapshot(client, f"AAPL@{CANDLES}")[b"head"] == b"2"
    viewer.close()


def test_redis_failing_mid_render_still_goes_to_the_retry_loop(
    client: "redis.Redis", monkeypatch: Any
) -> None:
    instance, _ = renderer(client)

    def away(self: Renderer, chart: Any, read: Any, stored: Any) -> Any:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(Renderer, "_build", away)
    write(client, "AAPL", 100, NOW)
    with pytest.raises(redis.ConnectionError):
        instance.step(block_ms=100)
    assert client.xpending(KEYS.changes, RENDER_GROUP)["pending"] == 1  # rendered on return
