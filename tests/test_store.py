import redis

from common.bars import MINUTE, Bar
from common.contract import changelog
from common.contract.keys import Keys
from fetcher.store import BarStore, Head

NOW = 1_794_999_960.0 + 10
KEYS = Keys("rtplot:")


def bar(t: int, c: float, v: int = 100) -> Bar:
    return Bar(t, c, c + 1, c - 1, c, v)


def minutes(n: int) -> list[int]:
    last = int(NOW) // MINUTE * MINUTE
    return [last - (n - 1 - i) * MINUTE for i in range(n)]


def test_upsert_is_idempotent_per_symbol_and_minute(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    bars = [bar(t, 100 + i) for i, t in enumerate(minutes(5))]
    first = store.upsert("AAPL", bars, as_of=NOW, now=NOW)
    assert (first.changed, first.version) == (5, 1)
    again = store.upsert("AAPL", bars, as_of=NOW + 1, now=NOW + 1)
    assert (again.changed, again.version) == (0, 1)  # nothing new: no version, no notice
    assert store.bars("AAPL") == bars
    assert client.xlen(KEYS.changes) == 1


def test_the_last_bar_is_replaced_when_it_changes(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    ts = minutes(3)
    store.upsert("AAPL", [bar(t, 100) for t in ts], as_of=NOW, now=NOW)
    moved = bar(ts[-1], 101, v=150)
    result = store.upsert("AAPL", [bar(ts[-1], 100), moved][1:], as_of=NOW + 1, now=NOW + 1)
    assert (result.changed, result.version) == (1, 2)
    stored = store.bars("AAPL")
    assert len(stored) == 3 and stored[-1] == moved
    assert client.zcard(KEYS.bars("AAPL")) == 3  # replaced, not duplicated


def test_a_late_write_never_takes_the_store_backwards(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    t = minutes(1)[0]
    store.upsert("AAPL", [bar(t, 101, v=200)], as_of=NOW + 5, now=NOW + 5)
    late = store.upsert("AAPL", [bar(t, 100, v=100)], as_of=NOW, now=NOW)
    assert late.stale and late.version == 1
    assert store.bars("AAPL") == [bar(t, 101, v=200)]


def test_the_window_is_bounded(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=10)
    ts = minutes(30)
    result = store.upsert("AAPL", [bar(t, 100) for t in ts], as_of=NOW, now=NOW)
    assert result.changed == 10  # older bars are not even written
    assert [b.t for b in store.bars("AAPL")] == ts[-10:]
    later = NOW + 5 * MINUTE
    trimmed = store.upsert("AAPL", [], as_of=later, now=later)
    assert trimmed.trimmed == 5 and trimmed.version == 2
    assert [b.t for b in store.bars("AAPL")] == ts[-5:]


def test_heads_and_drop(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    ts = minutes(3)
    store.upsert("AAPL", [bar(t, 100) for t in ts], as_of=NOW, now=NOW)
    store.upsert("AAPL", [bar(ts[-1], 100)], as_of=NOW + 5, now=NOW + 5)  # no change
    heads = store.heads(["AAPL", "MSFT"])
    assert heads["AAPL"] == Head(newest=ts[-1], changed_at=NOW, polled_at=NOW + 5)
    assert heads["MSFT"] == Head(newest=None, changed_at=None)
    store.drop("AAPL")
    assert store.bars("AAPL") == [] and not client.exists(KEYS.meta("AAPL"))


def test_a_symbols_versions_start_again_only_with_a_new_epoch(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    ts = minutes(3)
    store.upsert("AAPL", [bar(t, 100) for t in ts], as_of=NOW, now=NOW)
    first = client.hget(KEYS.meta("AAPL"), "epoch")
    store.upsert("AAPL", [bar(ts[-1], 101)], as_of=NOW + 1, now=NOW + 1)
    assert client.hget(KEYS.meta("AAPL"), "epoch") == first  # same stream, version 2
    assert client.zrange(KEYS.changelog("AAPL"), 0, -1) == [
        changelog.entry(1, ts[0]),
        changelog.entry(2, ts[-1]),
    ]
    client.delete(KEYS.meta("AAPL"))  # the version key lost (a store partly reset)
    again = store.upsert("AAPL", [bar(ts[-1], 102)], as_of=NOW + 2, now=NOW + 2)
    assert again.version == 1
    second = client.hget(KEYS.meta("AAPL"), "epoch")
    assert second and second != first
    # Nothing of the old stream's changelog is left to be read as the new one's.
    assert client.zrange(KEYS.changelog("AAPL"), 0, -1) == [changelog.entry(1, ts[-1])]


def test_another_redis_history_gives_every_symbol_a_new_epoch(client: "redis.Redis") -> None:
    store = BarStore(client, KEYS, window_minutes=60)
    store.upsert("AAPL", [bar(t, 100) for t in minutes(2)], as_of=NOW, now=NOW)
    assert store.follow_lineage(["AAPL", "MSFT"]) == 1  # first seen: AAPL's epoch renewed
    epoch = client.hget(KEYS.meta("AAPL"), "epoch")
    assert store.follow_lineage(["AAPL", "MSFT"]) == 0  # the same history: nothing to do
    assert client.hget(KEYS.meta("AAPL"), "epoch") == epoch
    client.set(KEYS.lineage, "another-replication-id")  # as after a restart or failover
    assert store.follow_lineage(["AAPL", "MSFT"]) == 1
    assert client.hget(KEYS.meta("AAPL"), "epoch") != epoch
    assert not client.exists(KEYS.meta("MSFT"))  # no symbol is made up


def test_a_symbols_market_is_kept_and_a_new_one_starts_a_new_epoch(
    client: "redis.Redis",
) -> None:
    from common.markets import NEW_YORK

    store = BarStore(client, KEYS, window_minutes=60)
    ts = minutes(3)
    always = NEW_YORK.always_open()
    first = store.upsert("AAPL", [bar(t, 100) for t in ts], as_of=NOW, now=NOW, market=always)
    assert first.version == 1 and store.market("AAPL") == always
    epoch = client.hget(KEYS.meta("AAPL"), "epoch")
    same = store.upsert("AAPL", [bar(ts[-1], 100)], as_of=NOW + 1, now=NOW + 1, market=always)
    silent = store.upsert("AAPL", [bar(ts[-1], 100)], as_of=NOW + 2, now=NOW + 2)
    assert (same.version, silent.version) == (1, 1) and store.market("AAPL") == always
    assert client.xlen(KEYS.changes) == 1  # idempotent: the same market changes nothing
    # RTPLOT_MARKET_HOURS=exchange from now on: every chart's axis moves.
    moved = store.upsert("AAPL", [], as_of=NOW + 3, now=NOW + 3, market=NEW_YORK)
    assert moved.version == 2 and store.market("AAPL") == NEW_YORK
    assert client.hget(KEYS.meta("AAPL"), "epoch") != epoch
    assert client.zrange(KEYS.changelog("AAPL"), 0, -1) == [changelog.entry(2, -1)]
    assert client.xlen(KEYS.changes) == 2  # the renderers are told
    assert store.bars("AAPL") == [bar(t, 100) for t in ts]


def test_dropping_a_symbol_drops_the_snapshots_of_its_views(client: "redis.Redis") -> None:

    store = BarStore(client, KEYS, window_minutes=60)
    store.upsert("AAPL", [bar(t, 100) for t in minutes(2)], as_of=NOW, now=NOW)
    client.zadd(KEYS.views("AAPL"), {"candles.5m.vol": NOW})
    client.hset(KEYS.snapshot("AAPL", "candles.5m.vol"), "head", 1)
    client.hset(KEYS.snapshot("AAPL"), "head", 1)
    store.drop("AAPL")
    assert client.keys("*AAPL*") == []
