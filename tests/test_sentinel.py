"""Redis Sentinel: a primary, a replica and three sentinels on loopback.

First every kind of connection rtplot opens (common.connection, Celery's broker,
redbeat's lock) against a live sentinel set; then, marked e2e, the whole pipeline through
a failover: the primary killed with SIGKILL while clients watch.
"""

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
import redis.asyncio

from common import connection
from common.connection import (
    answers,
    connect,
    connect_async,
    connect_listener,
    connect_listener_async,
)
from common.contract.keys import Keys
from common.settings import Settings
from fetcher.celery_app import make_app
from rtplot.processes import RedisServer, Service, free_port, terminate
from support import (
    ARTIFACTS,
    CLIENT_SOCKET_LEAK,
    ROOT,
    Listener,
    record_reliability,
    replication,
    service_env,
    wait_until,
)

SERVICE = "rtplot"  # the name the sentinels monitor the primary under
PASSWORD = "pa:ss/word"  # the servers'; written quoted in a URL
QUOTED = quote(PASSWORD, safe="")
QUORUM = 2
DOWN_AFTER_MS = 1000  # a primary silent this long is down, to one sentinel
FAILOVER_TIMEOUT_MS = 5000


class SentinelServer(RedisServer):
    """``redis-server sentinel.conf --sentinel`` on a free port, watching ``primary``.
    A sentinel rewrites its own file, so each has one in its own directory."""

    def __init__(self, primary: RedisServer) -> None:
        super().__init__()
        self.config = Path(self.dir) / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} {QUORUM}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
            f'sentinel auth-pass {SERVICE} "{PASSWORD}"\n'
        )

    def argv(self) -> list[str]:
        return [self.executable, str(self.config), "--sentinel"]


class SentinelSet:
    """A primary, a replica of it and three sentinels, started in that order and
    ready: the replica in sync and every sentinel knowing the replica and the others."""

    def __init__(self) -> None:
        # Either may be primary; a replica syncs at once, not after Redis' 5 s delay.
        args = ("--requirepass", PASSWORD, "--masterauth", PASSWORD)
        args += ("--repl-diskless-sync-delay", "0")
        self.primary = _with_password(RedisServer(*args))
        self.replica = _with_password(
            RedisServer(*args, "--replicaof", "127.0.0.1", str(self.primary.port))
        )
        self.sentinels = [SentinelServer(self.primary) for _ in range(3)]
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://:{QUOTED}@{hosts}/0/{SERVICE}"

    def start(self, failover: bool = True) -> "SentinelSet":
        """Up and answering; with ``failover``, also able to fail over (the sentinels
        find each other within a few seconds)."""
        try:
            self.primary.start()
            self.replica.start()
            wait_until(self._replica_in_sync, timeout=10, message="the replica in sync")
            for sentinel in self.sentinels:
                sentinel.start()
            if failover:
                wait_until(self._sentinels_ready, timeout=20, message="the sentinels to agree")
        except BaseException:
            self.cleanup()
            raise
        return self

    def _replica_in_sync(self) -> bool:
        return replication(self.replica.port, PASSWORD).get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            state = _sentinel_master(sentinel.port)
            if int(state.get("num-slaves", 0)) < 1 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def primary_port(self) -> int | None:
        """Where the first sentinel that answers says the primary is."""
        for sentinel in self.sentinels:
            client = redis.Redis(port=sentinel.port, socket_timeout=1)
            try:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                continue
            finally:
                client.close()
            if address:
                return int(address[1])
        return None

    def client(self) -> "redis.Redis":
        """A plain client of whichever server is primary now."""
        port = self.primary_port()
        assert port is not None, "no primary"
        return redis.Redis(port=port, password=PASSWORD)

    def cleanup(self) -> None:
        for server in (*self.sentinels, self.replica, self.primary):
            server.cleanup()


def _with_password(server: RedisServer) -> RedisServer:
    server.url = f"redis://:{QUOTED}@127.0.0.1:{server.port}/0"  # so start() can PING it
    return server


def _sentinel_master(port: int) -> dict[str, Any]:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return dict(client.sentinel_master(SERVICE))
    except redis.RedisError:
        return {}
    finally:
        client.close()


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    group = SentinelSet().start(failover=False)
    yield group
    group.cleanup()


@pytest.fixture
def sentinel_url(sentinels: SentinelSet) -> str:
    client = sentinels.client()
    client.flushall()
    client.close()
    return sentinels.url


# -- every connection rtplot opens, through the sentinels ------------------------------


def test_the_pooled_client_reaches_the_primary_and_retries(sentinel_url: str) -> None:
    client = connect(sentinel_url)
    try:
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.info("replication")["role"] == "master"
        pool = client.connection_pool
        assert isinstance(pool, connection.BlockingSentinelPool)
        assert pool.connection_kwargs["retry"].get_retries() == connection.RETRIES
        assert redis.ConnectionError in pool.connection_kwargs["retry_on_error"]
    finally:
        client.close()


def test_a_burst_waits_for_a_pooled_connection_instead_of_being_refused(
    sentinel_url: str,
) -> None:
    client = connect(sentinel_url)
    burst = connection.POOL_SIZE * 2
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            client.blpop(["nothing"], timeout=0.3)  # holds its connection 0.3 s
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hold) for _ in range(burst)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        client.close()
    assert errors == []


def test_the_asyncio_pool_waits_too(sentinel_url: str) -> None:
    async def burst() -> list[Any]:
        client = connect_async(sentinel_url)
        try:
            assert isinstance(client.connection_pool, connection.AsyncBlockingSentinelPool)
            calls = [
                client.blpop(["nothing"], timeout=0.3) for _ in range(connection.POOL_SIZE * 2)
            ]
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await client.aclose()

    results = asyncio.run(burst())
    assert [r for r in results if isinstance(r, BaseException)] == []


def test_the_listeners_subscribe_through_the_sentinels_and_never_retry(
    sentinel_url: str, sentinels: SentinelSet
) -> None:
    listener = connect_listener(sentinel_url)
    publisher = sentinels.client()
    pubsub = listener.pubsub()
    try:
        pubsub.subscribe("ch")
        assert pubsub.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]
        publisher.publish("ch", "hello")
        message = pubsub.get_message(timeout=2)
        assert message is not None and message["data"] == b"hello"
        assert listener.connection_pool.connection_kwargs["retry"].get_retries() == 0
    finally:
        pubsub.close()
        listener.close()
        publisher.close()

    async def listen() -> Any:
        client = connect_listener_async(sentinel_url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe("ch")
            await pubsub.get_message(timeout=2)
            publisher = sentinels.client()
            publisher.publish("ch", "async hello")
            publisher.close()
            message = await pubsub.get_message(timeout=2)
            assert client.connection_pool.connection_kwargs["retry"].get_retries() == 0
            return message
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    message = asyncio.run(listen())
    assert message is not None and message["data"] == b"async hello"


def test_answers_asks_the_sentinels(sentinel_url: str, sentinels: SentinelSet) -> None:
    assert answers(sentinel_url)
    assert not answers(sentinel_url.replace(f"/{SERVICE}", "/no-such-service"))
    dead = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0/{SERVICE}"
    started = time.monotonic()
    assert not answers(dead)
    assert time.monotonic() - started < 3
    # A password the servers do not take is no Redis either.
    assert not answers(sentinel_url.replace(QUOTED, "wrong"))


def test_celery_and_redbeat_reach_the_primary_through_the_sentinels(
    sentinel_url: str, sentinels: SentinelSet
) -> None:
    from redbeat.schedulers import get_redis

    app = make_app(Settings.from_env({"RTPLOT_REDIS_URL": sentinel_url}))
    primary = sentinels.client()
    try:
        with app.connection_for_write() as broker:
            queue = broker.SimpleQueue("rtplot.sentinel-test")
            queue.put({"tick": 1})
            # On the primary, under the broker's own key prefix.
            assert primary.llen(Keys().broker_prefix + "rtplot.sentinel-test") == 1
            message = queue.get(timeout=5)
            assert message.payload == {"tick": 1}
            message.ack()
            queue.close()
        lock = get_redis(app)
        lock.set(Keys().beat_prefix + "probe", "1")
        assert primary.get(Keys().beat_prefix + "probe") == b"1"
        assert app.conf.redbeat_redis_options["retry_period"] == 300
    finally:
        primary.close()
        redbeat_client = getattr(app, "redbeat_redis", None)
        if redbeat_client is not None:
            redbeat_client.close()
        app.redbeat_sentinel.close()
        app.close()


@pytest.mark.e2e
def test_every_kind_of_connection_follows_a_failover() -> None:
    group = SentinelSet().start()
    pooled = connect(group.url)
    listener = connect_listener(group.url)
    try:
        pooled.set("before", 1)
        assert pooled.wait(1, 2000) == 1  # on the replica too
        pubsub = listener.pubsub()
        pubsub.subscribe("ch")
        assert pubsub.get_message(timeout=2) is not None  # the confirmation
        group.primary.process.kill()  # type: ignore[union-attr]
        killed_at = time.monotonic()

        def written() -> bool:
            try:
                return bool(pooled.set("after", 1))
            except redis.RedisError:
                return False

        wait_until(written, timeout=20, interval=0.2, message="a write on the new primary")
        assert pooled.info("replication")["role"] == "master"
        # The listener's connection died with the primary and told it at once; a new
        # subscription, as the gateway's loop makes, reaches the new primary.
        with pytest.raises(redis.ConnectionError):
            while time.monotonic() - killed_at < 10:
                pubsub.get_message(timeout=0.5)
        pubsub.close()
        pubsub = listener.pubsub()
        pubsub.subscribe("ch")
        assert pubsub.get_message(timeout=2) is not None
        pooled.publish("ch", "after the failover")
        message = pubsub.get_message(timeout=2)
        assert message is not None and message["data"] == b"after the failover"
        pubsub.close()

        async def read_async() -> Any:
            client = connect_async(group.url)
            try:
                return await client.get("before")
            finally:
                await client.aclose()

        assert asyncio.run(read_async()) == b"1"  # replicated before the kill
    finally:
        pooled.close()
        listener.close()
        group.cleanup()


# -- the pipeline through a failover ---------------------------------------------------


class Services:
    """rtplot services as processes on a Redis URL of the test's choosing (a Stack
    starts a private redis-server of its own), with the test settings."""

    def __init__(self, redis_url: str, **settings: Any) -> None:
        self.env = service_env(redis_url, **settings)
        self.services: dict[str, Service] = {}
        self.listeners: list[Listener] = []

    def start(self, *names: str) -> None:
        for name in names:
            self._launch(name, name)
        for name in names:
            self.services[name].wait_healthy()

    def start_gateway(self, *args: str) -> None:
        self._launch("gateway", "gateway", *args)
        self.services["gateway"].wait_healthy()

    def _launch(self, name: str, *args: str) -> None:
        port = free_port()
        own = "RTPLOT_PORT" if name == "gateway" else "RTPLOT_METRICS_PORT"
        env = {**self.env, own: str(port)}
        self.services[name] = Service(
            name, args, env, log_dir=ARTIFACTS / "logs", cwd=ROOT, port=port
        )

    def url(self, name: str) -> str:
        return self.services[name].url

    def listen(self) -> Listener:
        """A client of the gateway, closed before the services stop (see
        support.CLIENT_SOCKET_LEAK)."""
        self.listeners.append(Listener(self.url("gateway")))
        return self.listeners[-1]

    def check_alive(self) -> None:
        for service in self.services.values():
            service.check_alive()

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        terminate(s.process for s in reversed(self.services.values()))


class Chart:
    """What the page keeps of a symbol's figures: the epoch and seq it holds. A figure
    of a new epoch is taken whatever its seq; within an epoch, only a higher seq."""

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.seq = 0

    def take(self, update: dict[str, Any]) -> bool:
        if update["epoch"] != self.epoch or update["seq"] > self.seq:
            self.epoch, self.seq = update["epoch"], update["seq"]
            return True
        return False


class Page:
    """The page in delta mode: a ``bars`` event that continues the figure it holds (same
    epoch, ``base_seq`` its seq) is applied; any other makes it ask for a snapshot."""

    def __init__(self, listener: Listener, symbol: str) -> None:
        self.listener, self.symbol = listener, symbol
        self.chart = Chart()
        self.asked = False
        self.applied: list[tuple[str, int, float]] = []  # (epoch, seq, when)

    def follow(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event, data, at = self.listener.events.get(timeout=remaining)
            except queue.Empty:
                return
            if event == "figure":
                self.asked = not self.chart.take(data) and self.asked
            elif event == "bars":
                self._bars(data, at)

    def _bars(self, delta: dict[str, Any], at: float) -> None:
        chart = self.chart
        if delta["epoch"] == chart.epoch and delta["base_seq"] == chart.seq:
            chart.seq = delta["seq"]
            self.applied.append((delta["epoch"], delta["seq"], at))
        elif delta["epoch"] == chart.epoch and delta["seq"] <= chart.seq:
            pass  # one it already holds
        elif not self.asked:
            self.asked = True
            self.listener.client.emit("snapshot", {"symbol": self.symbol})


def figures(listener: Listener, after: float = 0.0) -> list[tuple[dict[str, Any], float]]:
    return [(d, at) for e, d, at in list(listener.received) if e == "figure" and at > after]


def contiguous_window(client: "redis.Redis", symbol: str, minutes: int) -> bool:
    times = [int(t) for _, t in client.zrange(Keys().bars(symbol), 0, -1, withscores=True)]
    newest = int(time.time() // 60) * 60
    return (
        len(times) == minutes
        and all(b - a == 60 for a, b in pairwise(times))
        and times[-1] >= newest - 60
    )


@pytest.mark.e2e
@CLIENT_SOCKET_LEAK
def test_the_pipeline_rides_out_a_failover() -> None:
    group = SentinelSet().start()
    stack = Services(group.url, symbols="AAPL,MSFT")
    try:
        stack.start("worker", "beat", "renderer", "gateway")
        # A client of whole figures, and one that reads deltas as the page does; both
        # subscribe again after a reconnect, as the page does.
        watcher = stack.listen()
        watcher.resubscribe_on_reconnect({"symbol": "AAPL"})
        assert watcher.call("subscribe", {"symbol": "AAPL"})["ok"]
        reader = stack.listen()
        reader.resubscribe_on_reconnect({"symbol": "MSFT", "updates": "delta"})
        assert reader.call("subscribe", {"symbol": "MSFT", "updates": "delta"})["ok"]
        page = Page(reader, "MSFT")
        for _ in range(3):  # the snapshot, then live updates
            watcher.next("figure", timeout=30)
        page.follow(seconds=2)
        assert len(page.applied) >= 1, "the page applies deltas"
        chart = Chart()
        for update, _ in figures(watcher):
            chart.take(update)
        epoch_before = chart.epoch

        primary, replica = group.client(), redis.Redis(port=group.replica.port, password=PASSWORD)
        bars_before = primary.zcard(Keys().bars("AAPL"))
        # What the replica had not received yet when the primary died: about this.
        replicated = int(replica.info("replication")["master_repl_offset"])
        written = int(primary.info("replication")["master_repl_offset"])
        unreplicated = max(written - replicated, 0)
        group.primary.process.kill()  # type: ignore[union-attr]  # SIGKILL
        killed_at = time.monotonic()
        primary.close()
        replica.close()
        old_primary = group.primary.port
        wait_until(
            lambda: group.primary_port() not in (None, old_primary),
            timeout=30,
            interval=0.1,
            message="the sentinels to promote the replica",
        )
        promoted = time.monotonic() - killed_at
        assert group.primary_port() == group.replica.port

        def resumed() -> float | None:
            for update, at in figures(watcher, after=killed_at):
                if update["epoch"] != chart.epoch or update["seq"] > chart.seq:
                    return at
            return None

        resumed_at = wait_until(resumed, timeout=20, interval=0.1, message="updates to resume")
        recovery = resumed_at - killed_at
        # Once there is a primary, the pipeline needs about a second: no service waits
        # on a timer of its own (the beat gives its lock back rather than wait it out).
        assert recovery - promoted < 5, (promoted, recovery)

        # No chart freezes: every update from then on is one the page takes, and the new
        # primary's history is not the old one's, so each symbol has a new epoch.
        page.follow(seconds=max(killed_at + 8 - time.monotonic(), 0))
        after = figures(watcher, after=killed_at)
        taken = [chart.take(update) for update, _ in after]
        assert sum(taken) >= 4, after
        assert taken[-3:] == [True] * 3, [(u["epoch"], u["seq"]) for u, _ in after]
        assert after[-1][0]["epoch"] != epoch_before
        deltas = [(epoch, seq) for epoch, seq, at in page.applied if at > killed_at]
        assert len(deltas) >= 3 and deltas[-1][0] != epoch_before, page.applied
        page_recovery = min(at for _, _, at in page.applied if at > killed_at) - killed_at

        # A fresh client gets the snapshot, then live figures.
        fresh = stack.listen()
        assert fresh.call("subscribe", {"symbol": "MSFT"})["ok"]
        snapshot, _ = fresh.next("figure", timeout=10)
        live, _ = fresh.next(
            "figure",
            timeout=10,
            where=lambda d: d["epoch"] != snapshot["epoch"] or d["seq"] > snapshot["seq"],
        )
        assert live["symbol"] == "MSFT"

        # The window is whole again once the next ticks have backfilled it.
        new_primary = group.client()
        try:
            wait_until(
                lambda: (
                    contiguous_window(new_primary, "AAPL", 390)
                    and contiguous_window(new_primary, "MSFT", 390)
                ),
                timeout=30,
                message="a complete window on the new primary",
            )
        finally:
            new_primary.close()
        stack.check_alive()
    finally:
        stack.close()
        group.cleanup()
    print(
        f"failover: promoted after {promoted:.1f} s, figures after {recovery:.1f} s, "
        f"the page's deltas after {page_recovery:.1f} s; {unreplicated} bytes unreplicated"
    )
    record_reliability(
        "faults",
        {
            "fault": "Redis Sentinel: the primary killed (SIGKILL) mid-stream; three "
            f"sentinels (quorum {QUORUM}, down-after {DOWN_AFTER_MS} ms) promote the replica",
            "outcome": f"the sentinels promoted the replica after {promoted:.1f} s; every "
            "service found it by itself; the clients' updates resumed without a reload, "
            "under a new epoch; a new client subscribed at once; the next ticks backfilled "
            "the window",
            "recovery_s": round(recovery, 1),
            "lost": f"writes not yet replicated ({unreplicated} bytes at the kill; "
            f"the window held {bars_before} bars), fetched again by the next tick",
        },
    )


@pytest.mark.e2e
@CLIENT_SOCKET_LEAK
def test_the_eventlet_gateway_relays_through_the_sentinels(sentinel_url: str) -> None:
    stack = Services(sentinel_url, symbols="AAPL")
    try:
        stack.start("worker", "beat", "renderer")
        stack.start_gateway("--mode", "eventlet")
        listener = stack.listen()
        assert listener.call("subscribe", {"symbol": "AAPL"})["ok"]
        listener.next("figure", timeout=20)
        update, _ = listener.next("figure", timeout=20)
        assert update["symbol"] == "AAPL"
    finally:
        stack.close()


@pytest.mark.e2e
@CLIENT_SOCKET_LEAK
def test_up_uses_the_sentinels_and_starts_no_redis_of_its_own(
    sentinel_url: str, sentinels: SentinelSet
) -> None:
    from test_up import Up, children_of

    port = free_port()
    up = Up(service_env(sentinel_url, port=str(port), symbols="AAPL"))
    try:
        up.wait_for(f"http://127.0.0.1:{port}/")
        assert not [line for line in up.lines if "private" in line], up.output()
        assert len(children_of(up.process.pid)) == 4  # worker, beat, renderer, gateway
        listener = Listener(f"http://127.0.0.1:{port}")
        try:
            assert listener.call("subscribe", {"symbol": "AAPL"})["ok"]
            listener.next("figure", timeout=20)
        finally:
            listener.close()
        primary = sentinels.client()  # where the figures are stored
        assert primary.exists(Keys().snapshot("AAPL"))
        primary.close()
    finally:
        code = up.stop()
    assert code == 0, up.output()
