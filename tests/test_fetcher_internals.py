"""The fetcher's pacing of reconnects: kombu's own behaviour, only at most a second apart,
and redbeat's retries capped the same way."""

from collections.abc import Iterator
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.exceptions import OperationalError
from kombu.utils import functional

from fetcher import internals
from rtplot.processes import free_port


@pytest.fixture
def kombu_as_shipped() -> Iterator[None]:
    library = Connection.ensure_connection
    yield
    Connection.ensure_connection = library  # type: ignore[method-assign]


def attempts(monkeypatch: Any, retries: int = 4) -> tuple[list[float], str]:
    """The waits between tries to reach a broker that refuses, and the error at the end."""
    slept: list[float] = []
    monkeypatch.setattr(functional, "sleep", slept.append)
    waits: list[float] = []
    connection = Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    with pytest.raises(Exception) as error:
        connection.ensure_connection(lambda exc, interval: waits.append(interval), retries)
    connection.release()
    assert sum(slept) == pytest.approx(sum(waits))  # the waits were really slept
    return waits, type(error.value).__name__


def test_the_worker_reconnects_as_kombu_does_only_sooner(
    monkeypatch: Any, kombu_as_shipped: None
) -> None:
    theirs, their_error = attempts(monkeypatch)
    assert internals.pace_broker_reconnects()
    ours, our_error = attempts(monkeypatch)
    assert their_error == our_error  # it gives up the same way
    assert len(ours) == len(theirs) == 4  # after as many tries
    assert theirs == [2.0, 4.0, 6.0, 8.0]  # kombu's own pacing: 30 s apart at last
    assert ours == pytest.approx([0.2, 0.4, 0.6, 0.8]) and max(ours) <= 1.0
    assert internals.pace_broker_reconnects()  # twice is once


def test_pacing_given_by_the_caller_is_kept(monkeypatch: Any, kombu_as_shipped: None) -> None:
    internals.pace_broker_reconnects()
    waits: list[float] = []
    monkeypatch.setattr(functional, "sleep", lambda seconds: None)
    connection = Connection(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    with pytest.raises(OperationalError):
        connection.ensure_connection(
            lambda exc, interval: waits.append(interval), 2, interval_start=3, interval_step=1
        )
    connection.release()
    assert waits == [3.0, 4.0]


def test_redbeat_retries_at_most_a_second_apart(monkeypatch: Any) -> None:
    from redbeat import schedulers

    monkeypatch.setattr(schedulers.RetryingConnection, "RETRY_MAX_WAIT", 30)
    assert internals.pace_redbeat_retries()
    assert schedulers.RetryingConnection.RETRY_MAX_WAIT == 1


def test_untested_versions_keep_the_libraries_pacing(
    monkeypatch: Any, kombu_as_shipped: None
) -> None:
    monkeypatch.setattr(internals, "TESTED", {"kombu": ("0.1",)})
    library = Connection.ensure_connection
    assert not internals.pace_broker_reconnects()
    assert Connection.ensure_connection is library


def test_the_beats_lock_is_read_as_redbeat_took_it(redis_url: str, monkeypatch: Any) -> None:
    """What fetcher.beat gives back after a crash is the key and token redbeat really
    stored, so the give-back deletes our lock and nothing else."""
    from types import SimpleNamespace

    import redis
    from redbeat.schedulers import RedBeatScheduler, acquire_distributed_beat_lock

    from common.settings import Settings
    from fetcher.celery_app import make_app

    monkeypatch.setenv("RTPLOT_REDIS_URL", redis_url)
    app = make_app(Settings.from_env())
    scheduler = RedBeatScheduler(app=app, lazy=True)
    assert internals.held_beat_lock(scheduler) is None  # nothing taken yet
    acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))
    held = internals.held_beat_lock(scheduler)
    assert held is not None
    key, token = held
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get(key) == token
        assert key == scheduler.lock_key
        monkeypatch.setattr(internals, "TESTED", {"celery-redbeat": ("0.1",)})
        assert internals.held_beat_lock(scheduler) is None  # untested: redbeat's own way
    finally:
        scheduler.lock.release()
        client.close()


def test_the_beats_lock_is_given_back_only_with_our_token(client: Any) -> None:
    from fetcher import beat

    client.set("lock", b"ours")
    assert not beat.release(client, "lock", b"theirs")
    assert client.get("lock") == b"ours"
    assert beat.release(client, "lock", b"ours")
    assert client.get("lock") is None
