from collections.abc import Mapping

import redis

from common.bars import MINUTE, Bar
from common.keys import Keys
from common.settings import Settings
from fetcher.sources.base import FetchResult, RateLimited
from fetcher.sources.synthetic import SyntheticSource
from fetcher.store import BarStore
from fetcher.tick import run_tick

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
    client.zadd(Keys().watched, {"NVDA": NOW, "AMD": NOW + 1})
    report = run_tick(settings, client, RecordingSource(), now=NOW + 2)
    assert report.symbols == ["AAPL", "NVDA"]


def test_rate_limiting_backs_off_with_doubling_then_recovers(
    settings: Settings, client: "redis.Redis"
) -> None:
    source = RecordingSource()
    source.fail_with = RateLimited("429")
    report = run_tick(settings, client, source, now=NOW)
    assert report.skipped and "rate_limited" in report.skipped
    first_ttl = client.pttl(Keys().source_backoff)
    assert 0 < first_ttl <= 1000
    skipped = run_tick(settings, client, source, now=NOW + 0.1)
    assert skipped.skipped and "backing off" in skipped.skipped
    assert len(source.asked) == 1  # the source was left alone while backing off
    client.delete(Keys().source_backoff)
    run_tick(settings, client, source, now=NOW + 2)
    assert 1000 < client.pttl(Keys().source_backoff) <= 2000  # doubled
    client.delete(Keys().source_backoff)
    source.fail_with = None
    recovered = run_tick(settings, client, source, now=NOW + 3)
    assert recovered.skipped is None and recovered.bars_stored > 0
    assert client.get(Keys().source_failures) is None


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
