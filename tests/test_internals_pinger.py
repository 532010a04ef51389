"""The direct WebSocket path's one pinger: a PING when each client is due, a client that
answers stays, a client that does not is dropped, without a task per client."""

import asyncio
import time
from typing import Any

import pytest

from gateway.internals import websocket
from gateway.internals.websocket import Pinger


class Transport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class Socket:
    """What the pinger touches of python-engineio's socket."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.last_ping: float | None = time.time()  # as at connect: the first ping pending
        self.closing = self.closed = False
        self.queue = type("Sender", (), {"transport": Transport()})()
        self.pings = 0
        self.pinger: Pinger | None = None

    async def send(self, pkt: Any) -> None:
        self.pings += 1
        if self.answers and self.pinger is not None:  # its PONG, as receive() handles it
            asyncio.get_running_loop().call_later(0.01, self.pinger.schedule, self)


def test_a_client_that_answers_is_pinged_each_interval_and_one_that_does_not_is_dropped(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(websocket, "PING_TICK", 0.01)

    async def scenario() -> tuple[Socket, Socket]:
        pinger = Pinger(interval=0.05, timeout=0.05)
        talker, silent = Socket(answers=True), Socket(answers=False)
        for sock in (talker, silent):
            sock.pinger = pinger
            pinger.schedule(sock)  # as a PONG to the library's first ping does
        await asyncio.sleep(0.5)
        assert pinger.task is not None
        pinger.task.cancel()
        return talker, silent

    talker, silent = asyncio.run(scenario())
    assert talker.pings >= 4 and not talker.queue.transport.aborted
    assert silent.pings == 1 and silent.queue.transport.aborted


def test_a_first_ping_left_unanswered_is_noticed(monkeypatch: Any) -> None:
    monkeypatch.setattr(websocket, "PING_TICK", 0.01)

    async def scenario() -> Socket:
        pinger = Pinger(interval=0.05, timeout=0.05)
        sock = Socket(answers=False)
        pinger.watch(sock)  # the library sent the first PING; no PONG ever comes
        sock.last_ping = time.time()
        await asyncio.sleep(0.3)
        assert pinger.task is not None
        pinger.task.cancel()
        return sock

    assert asyncio.run(scenario()).queue.transport.aborted


@pytest.mark.parametrize("closing", [True, False])
def test_a_closing_socket_is_left_alone(monkeypatch: Any, closing: bool) -> None:
    monkeypatch.setattr(websocket, "PING_TICK", 0.01)

    async def scenario() -> Socket:
        pinger = Pinger(interval=0.02, timeout=0.02)
        sock = Socket(answers=False)
        sock.closing = closing
        pinger.schedule(sock)
        await asyncio.sleep(0.2)
        assert pinger.task is not None
        pinger.task.cancel()
        return sock

    sock = asyncio.run(scenario())
    assert (sock.pings == 0) is closing and sock.queue.transport.aborted is not closing
