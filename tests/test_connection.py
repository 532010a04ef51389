"""RTPLOT_REDIS_URL turned into each library's connection settings, without a server
(tests/test_sentinel.py runs them against real sentinels)."""

import asyncio

import redis
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from common import connection
from common.contract.keys import Keys
from common.settings import Settings
from fetcher.celery_app import make_app, redis_settings

SENTINEL_URL = (
    "redis+sentinel://:pa%3Ass%2Fword@sentinel-1:26379,sentinel-2:26380,10.0.0.3:26381/2/rtplot"
)
KEYS = Keys("app:")


def test_a_plain_url_reaches_celery_and_redbeat_as_it_is() -> None:
    url = "redis://:secret@redis:6379/0"
    assert redis_settings(url, KEYS) == {
        "broker_url": url,
        "broker_transport_options": {"global_keyprefix": KEYS.broker_prefix},
        "redbeat_redis_url": url,
        "redbeat_redis_options": {"retry_period": 300},
    }


def test_a_sentinel_url_becomes_kombus_sentinel_form() -> None:
    conf = redis_settings(SENTINEL_URL, KEYS)
    options = conf["broker_transport_options"]
    assert options["global_keyprefix"] == KEYS.broker_prefix  # still prefixed
    assert options["master_name"] == "rtplot"
    assert options["sentinel_kwargs"]["socket_timeout"] == connection.SENTINEL_TIMEOUT
    broker = Connection(conf["broker_url"], transport_options=options)
    hosts = [Connection(alt).as_uri(include_password=True) for alt in broker.alt]
    assert hosts == [
        "sentinel://:pa%3Ass%2Fword@sentinel-1:26379/2",
        "sentinel://:pa%3Ass%2Fword@sentinel-2:26380/2",
        "sentinel://:pa%3Ass%2Fword@10.0.0.3:26381/2",
    ]
    assert broker.password == "pa:ss/word"
    assert broker.virtual_host == "2"
    # Each sentinel's URL carries the password: kombu moves on to the next one's when a
    # sentinel is down. Celery's banner and logs show the one in use, masked.
    assert "pa" not in broker.as_uri().split("@")[0]


def test_a_sentinel_url_becomes_redbeats_sentinel_options() -> None:
    conf = redis_settings(SENTINEL_URL, KEYS)
    options = conf["redbeat_redis_options"]
    assert options["sentinels"] == [
        ("sentinel-1", 26379),
        ("sentinel-2", 26380),
        ("10.0.0.3", 26381),
    ]
    assert options["service_name"] == "rtplot"
    assert options["db"] == 2
    assert options["password"] == "pa:ss/word"
    assert options["retry_period"] == 300
    # redbeat picks its Sentinel mode by the scheme, and prints the URL in the beat's
    # banner through kombu, which must be able to parse it.
    url = conf["redbeat_redis_url"]
    assert url.startswith("redis-sentinel://")
    assert "word" not in maybe_sanitize_url(url)


def test_the_celery_app_takes_the_sentinel_settings() -> None:
    app = make_app(Settings.from_env({"RTPLOT_REDIS_URL": SENTINEL_URL}))
    assert app.conf.broker_url.startswith("sentinel://")
    assert app.conf.broker_transport_options["master_name"] == "rtplot"
    assert app.conf.redbeat_redis_options["service_name"] == "rtplot"
    assert app.conf.redbeat_key_prefix == Keys().beat_prefix
    app.close()


def test_the_pooled_clients_behind_sentinel_block_and_retry() -> None:
    client = connection.connect(SENTINEL_URL)  # connects on first use
    pool = client.connection_pool
    assert isinstance(pool, connection.BlockingSentinelPool)
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == connection.POOL_SIZE and pool.timeout == connection.POOL_WAIT
    kwargs = pool.connection_kwargs
    assert kwargs["password"] == "pa:ss/word" and kwargs["db"] == 2
    assert kwargs["retry"].get_retries() == connection.RETRIES
    assert pool.service_name == "rtplot"
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380, 26381]
    assert (
        "password" not in sentinels[0].connection_pool.connection_kwargs
        or not (sentinels[0].connection_pool.connection_kwargs["password"])
    )  # the sentinels take none
    client.close()

    async def async_pool() -> None:
        client = connection.connect_async(SENTINEL_URL)
        pool = client.connection_pool
        assert isinstance(pool, connection.AsyncBlockingSentinelPool)
        assert pool.max_connections == connection.POOL_SIZE
        assert pool.connection_kwargs["retry"].get_retries() == connection.RETRIES
        await client.aclose()

    asyncio.run(async_pool())


def test_the_listeners_behind_sentinel_never_retry() -> None:
    client = connection.connect_listener(SENTINEL_URL)
    assert client.connection_pool.connection_kwargs["retry"].get_retries() == 0
    client.close()

    async def listener() -> None:
        client = connection.connect_listener_async(SENTINEL_URL)
        assert client.connection_pool.connection_kwargs["retry"].get_retries() == 0
        await client.aclose()

    asyncio.run(listener())


def test_plain_urls_keep_their_plain_pools() -> None:
    client = connection.connect("redis://localhost:6379/0")
    assert type(client.connection_pool) is redis.BlockingConnectionPool
    client.close()
