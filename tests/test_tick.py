from collections.abc import Mapping

import pytest
import redis
from prometheus_client import REGISTRY

from common.bars import MINUTE, Bar
from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.watching import Watch, symbol_slots
from common.settings import Settings
from fetcher.sources.base import FetchResult, RateLimited
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from fetcher.tick import MAX_BACKOFF, run_tick
from support import record_reliability

NOW = 1_794_999_960.0 + 10


class RecordingSource:
    """Wraps the synthetic market and records what each tick asked for."""

    name = "recording"

    def __init__(self) -> None:
        self.inner = SyntheticSource()
        self.asked: list[dict[str, int]] = []
        self.fail_with: Exception | None = None

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        self.asked.append(dict(since))
        if self.fail_with is not None:
            raise self.fail_with
        return self.inner.fetch(since, now)


def test_a_new_symbol_is_backfilled_then_fetched_from_its_newest_bar(
    settings: Settings, client: "redis.Redis"
) -> None:
    source = RecordingSource()
    first = run_tick(settings, client, source, now=NOW)
    store = BarStore(client, Keys(), settings.window_minutes)
    start = store.window_start(NOW)
    assert source.asked[0] == {"AAPL": start, "MSFT": start}
    assert len(store.bars("AAPL")) == settings.window_minutes
    assert first.bars_stored == 2 * settings.window_minutes
    second = run_tick(settings, client, source, now=NOW + 1)
    newest = int(NOW) // MINUTE * MINUTE
    assert source.asked[1] == {"AAPL": newest, "MSFT": newest}
    assert second.bars_stored == 2  # only the minute in progress moved
    assert second.changed == {"AAPL": 2, "MSFT": 2}


def test_a_gap_is_backfilled(settings: Settings, client: "redis.Redis") -> None:
    source = RecordingSource()
    run_tick(settings, client, source, now=NOW)
    later = NOW + 30 * MINUTE  # the worker was down for half an hour
    run_tick(settings, client, source, now=later)
    bars = BarStore(client, Keys(), settings.window_minutes).bars("AAPL")
    assert [b.t for b in bars] == list(range(bars[0].t, bars[-1].t + MINUTE, MINUTE))
    assert len(bars) == settings.window_minutes


def test_watched_symbols_are_tracked_then_dropped(
    settings: Settings, client: "redis.Redis"
) -> None:
    keys = Keys()
    client.zadd(keys.watched, {"NVDA": NOW})
    source = RecordingSource()
    report = run_tick(settings, client, source, now=NOW)
    assert report.symbols == ["AAPL", "MSFT", "NVDA"]
    assert client.smembers(keys.tracked) == {b"AAPL", b"MSFT", b"NVDA"}
    assert client.exists(keys.bars("NVDA"))
    report = run_tick(settings, client, source, now=NOW + settings.watch_ttl + 1)
    assert report.symbols == ["AAPL", "MSFT"]
    assert not client.exists(keys.bars("NVDA"))
    assert client.zcard(keys.watched) == 0


def test_the_symbol_cap_holds(client: "redis.Redis", redis_url: str) -> None:
    settings = Settings.from_env(
        {
            "RTPLOT_REDIS_URL": redis_url,
            "RTPLOT_SYMBOLS": "AAPL",
            "RTPLOT_MAX_SYMBOLS": "2",
            "RTPLOT_WINDOW_MINUTES": "5",
        }
    )
    scripts = Scripts(client, Keys())
    slots = symbol_slots(settings.max_symbols, settings.symbols)
    stamps = [
        Watch(s, NOW + i, NOW - settings.watch_ttl, slots) for i, s in enumerate(["NVDA", "AMD"])
    ]
    assert [scripts.run(stamp) for stamp in stamps] == [True, False]  # as a gateway stamps
    report = run_tick(settings, client, RecordingSource(), now=NOW + 2)
    assert report.symbols == ["AAPL", "NVDA"]


def test_rate_limiting_backs_off_with_doubling_then_recovers(
    settings: Settings, client: "redis.Redis"
) -> None:
    source = RecordingSource()
    source.fail_with = RateLimited("429")
    report = run_tick(settings, client, source, now=NOW)
    assert report.skipped and "rate_limited" in report.skipped
    skipped = run_tick(settings, client, source, now=NOW + 0.5)
    assert skipped.skipped == "backing off after rate_limited"
    assert len(source.asked) == 1  # the source was left alone while backing off
    run_tick(settings, client, source, now=NOW + 1)  # asked again: fails, waits 2 s
    assert len(source.asked) == 2
    run_tick(settings, client, source, now=NOW + 2.5)
    assert len(source.asked) == 2  # doubled
    source.fail_with = None
    recovered = run_tick(settings, client, source, now=NOW + 3)
    assert recovered.skipped is None and recovered.bars_stored > 0
    assert client.get(Keys().source_failures) is None


def test_a_source_down_for_minutes_is_left_alone_then_the_gap_backfilled(
    settings: Settings, client: "redis.Redis"
) -> None:
    source = RecordingSource()
    run_tick(settings, client, source, now=NOW)
    source.fail_with = RateLimited("429")
    outage = 20 * MINUTE
    for second in range(1, int(outage)):  # a tick a second for twenty minutes
        run_tick(settings, client, source, now=NOW + second)
    # Doubling from 1 s to the 300 s cap: about a dozen attempts, not 1,200.
    assert 8 <= len(source.asked) - 1 <= 14, len(source.asked)
    staleness = REGISTRY.get_sample_value(
        "rtplot_fetcher_symbol_staleness_seconds", {"symbol": "AAPL"}
    )
    assert staleness is not None and staleness > outage - 5
    source.fail_with = None
    later = NOW + outage + MAX_BACKOFF
    run_tick(settings, client, source, now=later)
    bars = BarStore(client, Keys(), settings.window_minutes).bars("AAPL")
    assert bars[-1].t == int(later) // MINUTE * MINUTE
    assert [b.t for b in bars] == list(range(bars[0].t, bars[-1].t + MINUTE, MINUTE))
    assert (
        REGISTRY.get_sample_value("rtplot_fetcher_symbol_staleness_seconds", {"symbol": "AAPL"})
        == 0
    )
    record_reliability(
        "faults",
        {
            "fault": "the source rate-limited every request for 20 minutes (simulated clock)",
            "outcome": f"{len(source.asked) - 2} attempts, doubling to a 5-minute back-off, no "
            "crash loop; staleness rose in the metrics; the gap was backfilled at once",
            "recovery_s": "next tick",
            "lost": "no bar",
        },
    )


def test_bad_bars_never_reach_the_store(settings: Settings, client: "redis.Redis") -> None:
    t = int(NOW) // MINUTE * MINUTE

    class BadSource:
        name = "bad"

        def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
            return FetchResult(
                bars={
                    "AAPL": [
                        Bar(t - 120, 10, 11, 9, 10, 5),
                        Bar(t - 60, float("nan"), 11, 9, 10, 5),
                        Bar(t, 10, 11, 9, -1, 5),
                    ],
                    "MSFT": [],
                },
                errors={"MSFT": "no data"},
            )

    report = run_tick(settings, client, BadSource(), now=NOW)
    assert report.rejected == 2
    assert report.errors == {"MSFT": "no data"}
    assert [b.t for b in BarStore(client, Keys(), 60).bars("AAPL")] == [t - 120]


def test_two_deployments_share_one_redis_by_prefix(client: "redis.Redis", redis_url: str) -> None:
    blue, green = (
        Settings.from_env(
            {
                "RTPLOT_REDIS_URL": redis_url,
                "RTPLOT_SYMBOLS": symbols,
                "RTPLOT_KEY_PREFIX": prefix,
                "RTPLOT_WINDOW_MINUTES": "5",
            }
        )
        for prefix, symbols in (("blue:", "AAPL"), ("green:", "AAPL,MSFT"))
    )
    run_tick(blue, client, RecordingSource(), now=NOW)
    run_tick(green, client, RecordingSource(), now=NOW + 1)
    keys = {k.decode() for k in client.keys("*")}
    assert keys and all(k.startswith(("blue:", "green:")) for k in keys)
    assert client.smembers("blue:tracked") == {b"AAPL"}
    assert client.smembers("green:tracked") == {b"AAPL", b"MSFT"}
    assert client.xlen("blue:changes") == 1 and client.xlen("green:changes") == 2


class OwnSource:
    """Someone's own source, misbehaving as told."""

    name = "own"

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.calls = 0

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome  # type: ignore[return-value]


@pytest.mark.parametrize(
    "outcome",
    [ValueError("bad json"), KeyError("close"), ZeroDivisionError(), None, {"AAPL": []}],
    ids=["ValueError", "KeyError", "ZeroDivisionError", "None", "a dict"],
)
def test_a_source_failing_in_any_way_is_backed_off_like_the_built_in_ones(
    settings: Settings, client: "redis.Redis", outcome: object
) -> None:
    source = OwnSource(outcome)
    before = REGISTRY.get_sample_value("rtplot_fetcher_source_errors_total", {"kind": "error"})
    report = run_tick(settings, client, source, now=NOW)
    assert report.skipped and report.skipped.startswith("error: ")
    assert run_tick(settings, client, source, now=NOW + 0.5).skipped == "backing off after error"
    assert source.calls == 1
    after = REGISTRY.get_sample_value("rtplot_fetcher_source_errors_total", {"kind": "error"})
    assert after == (before or 0) + 1
    source.outcome = SyntheticSource().fetch({"AAPL": int(NOW) - 60, "MSFT": int(NOW) - 60}, NOW)
    assert run_tick(settings, client, source, now=NOW + 2).skipped is None  # recovered


def test_what_is_not_a_sane_bar_for_a_symbol_asked_about_is_dropped(
    settings: Settings, client: "redis.Redis"
) -> None:
    from common.markets import market_for

    t = int(NOW) // MINUTE * MINUTE
    good = Bar(t - 60, 10, 11, 9, 10, 5)
    source = OwnSource(
        FetchResult(
            bars={
                "AAPL": [
                    good,
                    (t, 10, 11, 9, 10, 5),  # not a Bar
                    Bar(t, "10", 11, 9, 10, 5),  # type: ignore[arg-type]
                    Bar(t + 30, 10, 11, 9, 10, 5),  # not on a minute
                    Bar(t + 600, 10, 11, 9, 10, 5),  # ten minutes ahead
                    Bar(t, 10, 11, 9, 10, 5.5),  # type: ignore[arg-type]  # half a share
                    Bar(float(t), 10, 11, 9, 10.5, 7),  # type: ignore[arg-type]  # fine
                ],
                "MSFT": "nothing",  # type: ignore[dict-item]
                "NVDA": [good],  # not asked about: not tracked
            },
            errors=["not a dict"],  # type: ignore[arg-type]
            markets={"AAPL": market_for("AAPL"), "MSFT": "NYSE"},  # type: ignore[dict-item]
        )
    )
    report = run_tick(settings, client, source, now=NOW)
    assert report.skipped is None and report.rejected == 7
    store = BarStore(client, Keys(), 60)
    assert store.bars("AAPL") == [good, Bar(t, 10, 11, 9, 10.5, 7)]
    assert store.bars("MSFT") == [] and store.bars("NVDA") == []
    assert store.market("AAPL") == market_for("AAPL") and store.market("MSFT") is None
