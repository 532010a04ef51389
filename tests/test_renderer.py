import time
from collections.abc import Iterable
from typing import Any

import orjson
import redis

from common.bars import MINUTE, Bar
from common.keys import RENDER_GROUP, Keys
from fetcher.store import BarStore
from renderer import service
from renderer.publish import Render
from renderer.service import Renderer
from renderer.snapshots import OLDER, SAME, STORED, SnapshotStore

NOW = 1_794_999_960.0 + 10
KEYS = Keys()
STYLE = {"color": "lime", "y_range": [1.0, 2.0]}


class FakePublisher:
    """The publish seam; the real one is proven end to end in test_pipeline.py."""

    def __init__(self) -> None:
        self.published: list[tuple[str, int]] = []
        self.deltas: list[dict[str, Any] | None] = []

    def watched(self, symbols: Iterable[str]) -> set[str]:
        return set()

    def publish(self, render: Render, watched: set[str]) -> None:
        payload = orjson.loads(render.payload_json)
        assert orjson.loads(render.figure_json) == payload["figure"]
        self.published.append((render.symbol, payload["seq"]))
        self.deltas.append(None if render.delta_json is None else orjson.loads(render.delta_json))


def write(client: "redis.Redis", symbol: str, close: float, at: float) -> int:
    t = int(at) // MINUTE * MINUTE
    result = BarStore(client, KEYS, 60).upsert(
        symbol, [Bar(t, close, close + 1, close - 1, close, 1)], as_of=at, now=at
    )
    return result.version


def renderer(client: "redis.Redis", name: str = "r1") -> tuple[Renderer, FakePublisher]:
    publisher = FakePublisher()
    instance = Renderer(client, KEYS, publisher, name=name)
    instance.ensure_group()
    return instance, publisher


def test_a_burst_of_changes_is_one_render_of_the_latest_state(client: "redis.Redis") -> None:
    for i in range(5):
        write(client, "AAPL", 100 + i, NOW + i)
    write(client, "MSFT", 50, NOW)
    instance, publisher = renderer(client)
    report = instance.step(block_ms=100)
    assert report.notices == 6
    assert sorted(publisher.published) == [("AAPL", 5), ("MSFT", 1)]
    payload = orjson.loads(client.hget(KEYS.snapshot("AAPL"), "payload") or b"")
    assert payload["seq"] == 5 and payload["symbol"] == "AAPL"
    assert payload["figure"]["data"][0]["y"] == [104]
    assert client.xpending(KEYS.changes, RENDER_GROUP)["pending"] == 0  # all acked


def test_the_snapshot_seq_only_grows(client: "redis.Redis") -> None:
    snapshots = SnapshotStore(client, KEYS)
    assert snapshots.store("AAPL", 5, b"five", STYLE) == STORED
    assert snapshots.store("AAPL", 5, b"again", STYLE) == SAME
    assert snapshots.store("AAPL", 4, b"late", STYLE) == OLDER
    assert client.hget(KEYS.snapshot("AAPL"), "payload") == b"five"
    assert snapshots.seq("AAPL") == 5


def test_a_repeated_render_publishes_nothing(client: "redis.Redis") -> None:
    write(client, "AAPL", 100, NOW)
    instance, publisher = renderer(client)
    assert instance.render("AAPL") == 1
    assert instance.render("AAPL") is None
    assert publisher.published == [("AAPL", 1)]


def test_renderers_share_the_work(client: "redis.Redis") -> None:
    first, first_published = renderer(client, "r1")
    second, second_published = renderer(client, "r2")
    write(client, "AAPL", 100, NOW)
    first.step(block_ms=100)
    write(client, "MSFT", 100, NOW)
    second.step(block_ms=100)
    assert first_published.published == [("AAPL", 1)]
    assert second_published.published == [("MSFT", 1)]


def test_a_notice_left_by_a_dead_renderer_is_claimed_and_rendered(
    client: "redis.Redis", monkeypatch: Any
) -> None:
    monkeypatch.setattr(service, "CLAIM_IDLE_MS", 300)
    write(client, "AAPL", 100, NOW)
    renderer(client)  # creates the group
    # A renderer reads the notice, then dies before rendering or acknowledging it.
    client.xreadgroup(RENDER_GROUP, "dead", {KEYS.changes: ">"}, count=10)
    survivor, publisher = renderer(client, "survivor")
    assert survivor.step(block_ms=10).notices == 0  # not idle long enough to claim
    assert publisher.published == []
    time.sleep(0.4)
    survivor._last_claim = 0.0  # due for another look
    report = survivor.step(block_ms=10)
    assert report.rendered == {"AAPL": 1}
    assert publisher.published == [("AAPL", 1)]
    assert client.xpending(KEYS.changes, RENDER_GROUP)["pending"] == 0


def test_a_claimed_notice_is_republished_even_if_its_snapshot_was_stored(
    client: "redis.Redis", monkeypatch: Any
) -> None:
    monkeypatch.setattr(service, "CLAIM_IDLE_MS", 0)
    write(client, "AAPL", 100, NOW)
    renderer(client)
    client.xreadgroup(RENDER_GROUP, "dead", {KEYS.changes: ">"}, count=10)
    # The dead renderer had stored the snapshot but died before publishing it.
    dead, _ = renderer(client, "dead")
    dead.snapshots.store("AAPL", 1, b"{}", STYLE)
    survivor, publisher = renderer(client, "survivor")
    survivor.step(block_ms=10)
    assert publisher.published == [("AAPL", 1)]


def test_nothing_is_rendered_for_a_symbol_without_bars(client: "redis.Redis") -> None:
    instance, publisher = renderer(client)
    client.xadd(KEYS.changes, {"symbol": "GONE", "version": 3})
    assert instance.step(block_ms=10).notices == 1
    assert publisher.published == []
