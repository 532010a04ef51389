"""The gateway's Engine.IO poll behaves as python-engineio's own does.

A differential test runs both on the same queue contents; the cases after it pin down
each behaviour, including the one intended difference (a WebSocket writer waits past
the poll timeout, since its reader ends it)."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from engineio import exceptions
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.internals.poll import LIBRARY_POLL, poll


def socket(*queued: Any, wait: float = 5.0, websocket: bool = False) -> Any:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in queued:
        queue.put_nowait(item)
    server = SimpleNamespace(ping_interval=wait / 2, ping_timeout=wait / 2)
    return SimpleNamespace(queue=queue, server=server, upgraded=websocket)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


queued = st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(contents=queued, websocket=st.booleans())
def test_both_polls_take_the_same_packets_and_leave_the_same_queue(
    contents: list[Any], websocket: bool
) -> None:
    async def both() -> tuple[Any, Any]:
        outcomes = []
        for implementation in (LIBRARY_POLL, poll):
            sock = socket(*contents, websocket=websocket)
            taken = await implementation(sock)
            left = [sock.queue.get_nowait() for _ in range(sock.queue.qsize())]
            outcomes.append((list(taken), left))
        return outcomes[0], outcomes[1]

    theirs, ours = run(both())
    assert ours == theirs


def test_both_polls_end_a_silent_long_poll() -> None:
    for implementation in (LIBRARY_POLL, poll):
        with pytest.raises(exceptions.QueueEmpty):
            run(implementation(socket(wait=0.05)))


def test_everything_queued_goes_out_in_one_poll() -> None:
    sock = socket("a", "b", "c")
    assert run(poll(sock)) == ["a", "b", "c"]
    assert sock.queue.empty()


def test_the_close_marker_ends_the_writer() -> None:
    assert run(poll(socket(None))) == []


def test_packets_before_the_close_marker_go_out_and_the_marker_stays() -> None:
    sock = socket("a", None, "late")
    assert run(poll(sock)) == ["a"]
    remaining = [sock.queue.get_nowait() for _ in range(sock.queue.qsize())]
    assert remaining == ["late", None]  # the next poll still sees the marker


def test_a_packet_arriving_later_wakes_the_poll() -> None:
    async def scenario() -> list[Any]:
        sock = socket()
        asyncio.get_running_loop().call_later(0.05, sock.queue.put_nowait, "x")
        return list(await poll(sock))

    assert run(scenario()) == ["x"]


def test_silence_longer_than_ping_interval_and_timeout_ends_the_writer() -> None:
    with pytest.raises(exceptions.QueueEmpty):
        run(poll(socket(wait=0.05)))


def test_a_websocket_writer_waits_past_the_timeout_for_its_reader_to_end_it() -> None:
    async def scenario() -> list[Any]:
        sock = socket(wait=0.05, websocket=True)
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, sock.queue.put_nowait, "late")
        return list(await poll(sock))

    assert run(scenario()) == ["late"]


def test_a_websocket_writer_ends_on_the_marker_its_reader_queues() -> None:
    async def scenario() -> list[Any]:
        sock = socket(wait=0.05, websocket=True)
        asyncio.get_running_loop().call_later(0.1, sock.queue.put_nowait, None)
        return list(await poll(sock))

    assert run(scenario()) == []
