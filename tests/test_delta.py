"""Deltas: a page applying them holds exactly the figure a whole render gives, whether
it starts from the live stream or from a stored figure and its catch-up."""

from typing import Any

import orjson
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.bars import MINUTE, Bar
from common.keys import Keys
from common.messages import delta_room
from fetcher.store import BarStore
from renderer.service import Renderer
from renderer.store import RenderStore

START = 1_794_999_960
KEYS = Keys()


class Page:
    """What the page receives on the symbol's delta room, as (event, payload)."""

    def __init__(self, client: "redis.Redis") -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(KEYS.room_channel(delta_room("AAPL")))
        self.pubsub.get_message(timeout=1)

    def received(self) -> list[tuple[str, Any]]:
        events = []
        while (message := self.pubsub.get_message(timeout=0.05)) is not None:
            event, payload = orjson.loads(message["data"][1:])  # 2["bars",{...}]
            events.append((event, payload))
        return events


class NoViewers:
    def publish_figures(self, *args: Any) -> None:
        raise AssertionError("nobody watches the figure rooms here")


def apply(x: list[int], y: list[float], delta: dict[str, Any]) -> tuple[list[int], list[float]]:
    """What the page does with a `bars` event (gateway/static/app.js, applyDelta)."""
    first = delta["bars"][0][0] * 1000 if delta["bars"] else float("inf")
    keep = [i for i, t in enumerate(x) if delta["start"] * 1000 <= t < first]
    x = [x[i] for i in keep] + [b[0] * 1000 for b in delta["bars"]]
    y = [y[i] for i in keep] + [b[4] for b in delta["bars"]]
    return x, y


def trace(figure_payload: dict[str, Any]) -> tuple[list[int], list[float]]:
    data = figure_payload["figure"]["data"][0]
    return list(data["x"]), list(data["y"])


def write(store: BarStore, bars: list[Bar], at: float) -> None:
    store.upsert("AAPL", bars, as_of=at, now=at)


def test_a_changed_last_bar_is_a_one_bar_delta(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, 60)
    page = Page(client)
    renderer = Renderer(client, KEYS, NoViewers(), name="r", snapshot_every=3600)
    now = START + 10
    closes = [9, 12, 10, 10, 10]  # oldest first: the range is 9..12 whatever the last does
    write(
        store, [Bar(START - 60 * (4 - i), c, c + 1, c - 1, c, 1) for i, c in enumerate(closes)], now
    )
    renderer.render("AAPL")
    [(event, first)] = page.received()
    assert event == "figure"  # nothing to be a delta from yet

    def next_delta(bar: Bar, at: float) -> dict[str, Any]:
        write(store, [bar], at)
        renderer.render("AAPL")
        [(name, delta)] = page.received()
        assert name == "bars"
        return delta  # type: ignore[no-any-return]

    delta = next_delta(Bar(START, 10, 12, 9, 11.5, 2), now + 1)
    assert (delta["seq"], delta["base_seq"], delta["epoch"]) == (2, 1, first["epoch"])
    assert delta["bars"] == [[START, 10.0, 12.0, 9.0, 11.5, 2]]
    assert delta["style"] == {"color": "lime"}  # was flat; the range did not move
    assert next_delta(Bar(START, 10, 12, 9, 11.5, 3), now + 2)["style"] == {}  # volume only
    assert next_delta(Bar(START, 10, 12, 9, 9.5, 4), now + 3)["style"] == {"color": "red"}
    moved = next_delta(Bar(START, 10, 14, 9, 13.5, 5), now + 4)  # a new high moves the range
    assert moved["style"] == {"color": "lime", "y_range": [8.32, 14.18]}
    assert len(orjson.dumps(delta)) * 10 < len(orjson.dumps(first))


steps = st.lists(
    st.tuples(
        st.sampled_from(["tick", "new_minute", "revise_old", "idle_trim", "snapshot_due"]),
        st.floats(min_value=1, max_value=500, allow_nan=False),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_the_live_deltas_and_every_catch_up_give_the_whole_figure(
    client: "redis.Redis", steps: list[tuple[str, float]]
) -> None:
    client.flushdb()
    store = BarStore(client, KEYS, window_minutes=10)
    page = Page(client)
    renderer = Renderer(client, KEYS, NoViewers(), name="r", snapshot_every=3600)
    now = float(START + 5)
    write(store, [Bar(START - 60 * i, 50, 51, 49, 50, 1) for i in range(10)], now)
    renderer.render("AAPL")
    [(_, first)] = page.received()
    x, y = trace(first)
    for kind, price in steps:
        now += {"tick": 1, "new_minute": MINUTE, "revise_old": 1, "idle_trim": 3 * MINUTE}.get(
            kind, 1
        )
        minute = int(now) // MINUTE * MINUTE
        bars = {
            "tick": [Bar(minute, price, price, price, price, 5)],
            "new_minute": [Bar(minute, price, price, price, price, 1)],
            "revise_old": [Bar(minute - 4 * MINUTE, price, price, price, price, 3)],
        }.get(kind, [])
        renderer.snapshot_every = 0 if kind == "snapshot_due" else 3600
        write(store, bars, now)
        if renderer.render("AAPL") is None:
            continue
        [(event, delta)] = page.received()
        assert event == "bars"
        x, y = apply(x, y, delta)
        rows = RenderStore(client, KEYS).read("AAPL").rows  # every bar, as stored
        assert (x, y) == ([int(r[0]) * 1000 for r in rows], [r[4] for r in rows])
        stored = client.hgetall(KEYS.snapshot("AAPL"))
        head = orjson.loads(stored[b"payload"])
        if b"catchup" in stored:  # a page subscribing now: the stored figure, caught up
            catchup = orjson.loads(stored[b"catchup"])
            assert catchup["base_seq"] == head["seq"] and catchup["seq"] == delta["seq"]
            sx, sy = apply(*trace(head), catchup)
        else:
            assert head["seq"] == delta["seq"]
            sx, sy = trace(head)
        assert (x, y) == (sx, sy)
