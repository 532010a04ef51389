import gc
import shutil
from collections.abc import Callable, Iterator

import pytest
import redis
from playwright.sync_api import Browser, Playwright, sync_playwright

from bench.page import CHROMIUM, CHROMIUM_ARGS
from common.settings import Settings
from support import ARTIFACTS, CLIENT_SOCKET_LEAK, Listener, RedisServer

# Fixtures that start a redis-server (the suite's, a test's own, a Sentinel set).
REDIS_FIXTURES = {"redis_server", "own_redis", "sentinels"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test needs a Redis when it uses one of REDIS_FIXTURES or starts services (e2e);
    so ``-m "not redis"`` runs the tests that need nothing but Python."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & REDIS_FIXTURES or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(autouse=True)
def collect_leaked_client_sockets(request: pytest.FixtureRequest) -> Iterator[None]:
    """Finalise, while their test's filter still applies, the sockets that test's clients
    leaked (see support.CLIENT_SOCKET_LEAK); left to a later collection they would fail
    whichever test happened to be running."""
    yield
    markers = request.node.iter_markers("filterwarnings")
    if any(marker.args == CLIENT_SOCKET_LEAK.mark.args for marker in markers):
        gc.collect()


@pytest.fixture(scope="session", autouse=True)
def fresh_reliability_rows(request: pytest.FixtureRequest) -> None:
    """Each run's reliability tables come from that run alone. `make test` runs the Docker
    test as a second session beside the rest; it records no rows and must not delete
    the rest's."""
    if all(item.path.name == "test_compose_docker.py" for item in request.session.items):
        return
    shutil.rmtree(ARTIFACTS / "reliability", ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the suite's own redis-server."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def client(redis_url: str) -> Iterator["redis.Redis"]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.from_env(
        {
            "RTPLOT_REDIS_URL": redis_url,
            "RTPLOT_SYMBOLS": "AAPL,MSFT",
            "RTPLOT_WINDOW_MINUTES": "120",
        }
    )


@pytest.fixture
def listen() -> Iterator[Callable[[str], Listener]]:
    """Opens Listeners that are closed after the test, whether it passed or not."""
    opened: list[Listener] = []

    def open_listener(url: str) -> Listener:
        opened.append(Listener(url))
        return opened[-1]

    yield open_listener
    for listener in opened:
        listener.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (bench.page's flags: as root and offline)."""
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield instance
    instance.close()
