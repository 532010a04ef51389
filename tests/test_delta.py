"""Deltas: a client applying them holds exactly the figure a full snapshot would give."""

from collections.abc import Iterable
from typing import Any

import orjson
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.bars import MINUTE, Bar
from common.keys import Keys
from fetcher.store import BarStore
from renderer.publish import Render
from renderer.service import Renderer

START = 1_794_999_960
KEYS = Keys()


class Recorder:
    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any] | None] = []

    def watched(self, symbols: Iterable[str]) -> set[str]:
        return set()

    def publish(self, render: Render, watched: set[str]) -> None:
        self.figures.append(orjson.loads(render.payload_json))
        self.deltas.append(None if render.delta_json is None else orjson.loads(render.delta_json))


def apply(x: list[int], y: list[float], delta: dict[str, Any]) -> tuple[list[int], list[float]]:
    """What the page does with a `bars` event (gateway/static/app.js, applyDelta)."""
    first = delta["bars"][0][0] * 1000 if delta["bars"] else float("inf")
    keep = [i for i, t in enumerate(x) if delta["start"] * 1000 <= t < first]
    x = [x[i] for i in keep] + [b[0] * 1000 for b in delta["bars"]]
    y = [y[i] for i in keep] + [b[4] for b in delta["bars"]]
    return x, y


def write(store: BarStore, bars: list[Bar], at: float) -> None:
    store.upsert("AAPL", bars, as_of=at, now=at)


def test_a_changed_last_bar_is_a_one_bar_delta(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, 60)
    recorder = Recorder()
    renderer = Renderer(client, KEYS, recorder, name="r")
    now = START + 10
    closes = [9, 12, 10, 10, 10]  # oldest first: the range is 9..12 whatever the last does
    write(
        store, [Bar(START - 60 * (4 - i), c, c + 1, c - 1, c, 1) for i, c in enumerate(closes)], now
    )
    renderer.render("AAPL")
    assert recorder.deltas == [None]  # nothing to be a delta from yet
    write(store, [Bar(START, 10, 12, 9, 11.5, 2)], now + 1)
    renderer.render("AAPL")
    delta = recorder.deltas[-1]
    assert delta is not None
    assert (delta["seq"], delta["base_seq"]) == (2, 1)
    assert delta["bars"] == [[START, 10.0, 12.0, 9.0, 11.5, 2]]
    assert delta["style"] == {"color": "lime"}  # was flat; the range did not move
    write(store, [Bar(START, 10, 12, 9, 11.5, 3)], now + 2)  # only the volume moved
    renderer.render("AAPL")
    assert recorder.deltas[-1] is not None
    assert recorder.deltas[-1]["style"] == {}  # nothing about the look changed
    write(store, [Bar(START, 10, 12, 9, 9.5, 4)], now + 3)
    renderer.render("AAPL")
    assert recorder.deltas[-1] is not None
    assert recorder.deltas[-1]["style"] == {"color": "red"}
    write(store, [Bar(START, 10, 14, 9, 13.5, 5)], now + 4)  # a new high moves the range
    renderer.render("AAPL")
    assert recorder.deltas[-1] is not None
    assert recorder.deltas[-1]["style"] == {"color": "lime", "y_range": [8.32, 14.18]}
    full = len(orjson.dumps(recorder.figures[-1]))
    assert len(orjson.dumps(delta)) * 20 < full


steps = st.lists(
    st.tuples(
        st.sampled_from(["tick", "new_minute", "revise_old", "idle_trim"]),
        st.floats(min_value=1, max_value=500, allow_nan=False),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_applying_every_delta_gives_the_full_figure(
    client: "redis.Redis", steps: list[tuple[str, float]]
) -> None:
    client.flushdb()
    store = BarStore(client, KEYS, window_minutes=10)
    recorder = Recorder()
    renderer = Renderer(client, KEYS, recorder, name="r")
    now = float(START + 5)
    write(store, [Bar(START - 60 * i, 50, 51, 49, 50, 1) for i in range(10)], now)
    renderer.render("AAPL")
    trace = recorder.figures[-1]["figure"]["data"][0]
    x, y = list(trace["x"]), list(trace["y"])
    for kind, price in steps:
        now += {"tick": 1, "new_minute": MINUTE, "revise_old": 1, "idle_trim": 3 * MINUTE}[kind]
        minute = int(now) // MINUTE * MINUTE
        bars = {
            "tick": [Bar(minute, price, price, price, price, 5)],
            "new_minute": [Bar(minute, price, price, price, price, 1)],
            "revise_old": [Bar(minute - 4 * MINUTE, price, price, price, price, 3)],
            "idle_trim": [],
        }[kind]
        write(store, bars, now)
        if renderer.render("AAPL") is None:
            continue
        delta = recorder.deltas[-1]
        assert delta is not None and delta["base_seq"] == recorder.figures[-2]["seq"]
        x, y = apply(x, y, delta)
        expected = recorder.figures[-1]["figure"]["data"][0]
        assert (x, y) == (expected["x"], expected["y"])
