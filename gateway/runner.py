"""Performing the protocol core's steps on a live server, under asyncio or eventlet.

python-socketio and redis-py give the asyncio and the eventlet server the same methods,
returning a coroutine under asyncio and the result under eventlet. So each step is
performed by one method here, whichever the server; ``drive_async`` awaits what needs
awaiting and ``drive`` has nothing to await.
"""

import inspect
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import redis.asyncio
import socketio

from common.contract.keys import Keys
from common.contract.lua import ScriptCall, Scripts
from common.contract.snapshots import ReadSnapshot
from common.settings import Settings
from gateway import internals, steps
from gateway.core import GatewayCore, Handler, Steps
from gateway.internals import websocket
from gateway.watching import watch_call, watch_view_call

log = logging.getLogger("rtplot.gateway")

T = TypeVar("T")
LISTEN_TIMEOUT = 5.0  # seconds a subscribe waits for its room's channel to be confirmed
RESTART_AFTER = 1.0  # seconds before a background loop that failed runs again


class Runner:
    """Performs steps with ``sio`` (``socketio.AsyncServer`` or ``Server``), its relay
    manager and ``redis`` (a ``redis.asyncio.Redis`` or ``redis.Redis``)."""

    def __init__(self, sio: Any, redis_client: Any, settings: Settings) -> None:
        self.sio, self.redis, self.settings = sio, redis_client, settings
        self.manager = sio.manager
        self.scripts = Scripts(redis_client, Keys(settings.key_prefix))
        self.is_async = isinstance(redis_client, redis.asyncio.Redis)
        self.perform_as: dict[type, Callable[[Any], Any]] = {
            steps.Watch: self.watch,
            steps.WatchView: self.watch_view,
            steps.ReadSnapshot: self.read_snapshot,
            steps.Hold: lambda s: self.manager.delivery.hold(s.sid, s.room),
            steps.Listen: lambda s: self.manager.listen_room(s.room, LISTEN_TIMEOUT),
            steps.Enter: lambda s: self.sio.enter_room(s.sid, s.room),
            steps.Send: self.send,
            steps.TakeHeld: self.take_held,
            steps.Release: lambda s: self.manager.delivery.release(s.sid, s.room),
            steps.Leave: self.leave,
            steps.Forget: lambda s: self.manager.delivery.forget(s.sid),
            steps.Disconnect: lambda s: self.sio.disconnect(s.sid),
            steps.DropSlowConsumers: self.drop_slow_consumers,
            steps.Sleep: lambda s: self.sio.sleep(s.seconds),
        }

    def perform(self, step: steps.Step) -> Any:
        """The step's result, or (under asyncio) an awaitable of it."""
        return self.perform_as[type(step)](step)

    def run(self, call: ScriptCall[T]) -> Any:
        """A script of the contract: its reply, or (under asyncio) an awaitable of it."""
        return self.scripts.run_async(call) if self.is_async else self.scripts.run(call)

    def watch(self, step: steps.Watch) -> Any:
        if step.symbol in self.settings.symbols:
            return True  # configured symbols are always tracked
        return self.run(watch_call(self.settings, step.symbol))

    def watch_view(self, step: steps.WatchView) -> Any:
        return self.run(watch_view_call(step.symbol, step.view, step.notify))

    def read_snapshot(self, step: steps.ReadSnapshot) -> Any:
        return self.run(ReadSnapshot(step.symbol, step.view))

    def take_held(self, step: steps.TakeHeld) -> Any:
        return self.manager.delivery.take_held(step.sid, self.eio_sid(step.sid), step.room)

    def send(self, step: steps.Send) -> Any:
        eio_sid = self.eio_sid(step.sid)
        return None if eio_sid is None else self.manager.outbox.send((eio_sid,), step.packets)

    def leave(self, step: steps.Leave) -> Any:
        for room in step.rooms:
            self.manager.delivery.leave(step.sid, room)
        return in_order([partial(self.sio.leave_room, step.sid, room) for room in step.rooms])

    def drop_slow_consumers(self, step: steps.DropSlowConsumers) -> Any:
        overfull = self.manager.outbox.overfull(step.limit)
        drops = [
            lambda eio_sid=eio_sid: self.manager.outbox.drop(eio_sid) for eio_sid, _ in overfull
        ]
        return in_order(drops, [queued for _, queued in overfull])

    def eio_sid(self, sid: str) -> str | None:
        try:
            eio_sid: str | None = self.manager.eio_sid_from_sid(sid, "/")
        except KeyError:  # nobody is connected any more
            return None
        return eio_sid


def in_order(calls: Sequence[Callable[[], Any]], result: Any = None) -> Any:
    """Make the calls one after another; under asyncio, a coroutine that awaits each."""
    for i, call in enumerate(calls):
        outcome = call()
        if inspect.isawaitable(outcome):
            return _finish_in_order(outcome, calls[i + 1 :], result)
    return result


async def _finish_in_order(first: Any, rest: Sequence[Callable[[], Any]], result: Any) -> Any:
    await first
    for call in rest:
        outcome = call()
        if inspect.isawaitable(outcome):
            await outcome
    return result


# -- driving the core's generators ---------------------------------------------------------


def drive(work: Steps[T], perform: Callable[[steps.Step], Any]) -> T:
    """Run a core generator to its end, performing each step as it comes."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = work.send(result) if error is None else work.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            result, error = perform(step), None
        except Exception as exc:  # the core decides what a failed step means
            result, error = None, exc


async def drive_async(work: Steps[T], perform: Callable[[steps.Step], Any]) -> T:
    """``drive``, awaiting each step that returns an awaitable."""
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = work.send(result) if error is None else work.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            result, error = perform(step), None
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            result, error = None, exc


def register(sio: Any, core: GatewayCore, wrap: Callable[[Handler], Callable[..., Any]]) -> None:
    """The core's handlers on a server, each wrapped to be driven in its mode."""
    # Under asyncio the request need not be kept once read (under eventlet, its WSGI
    # server still reads it after the handler).
    release = internals.enabled() and isinstance(sio, socketio.AsyncServer)
    sio.on("connect", _connect_handler(core, release))
    for event, handler in core.handlers().items():
        sio.on(event, wrap(handler))


def _connect_handler(core: GatewayCore, release: bool) -> Callable[..., None]:
    def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        admitted = core.connect(sid, environ, auth)
        if release:
            websocket.release_request(environ)
        if not admitted:
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")

    return on_connect


def forever(loop: Callable[[], Steps[None]], runner: Runner) -> None:
    """A background loop of the core, started again if it ever fails."""
    while True:
        try:
            drive(loop(), runner.perform)
        except Exception:
            log.exception("background loop failed; restarting it")
        runner.sio.sleep(RESTART_AFTER)


async def forever_async(loop: Callable[[], Steps[None]], runner: Runner) -> None:
    while True:
        try:
            await drive_async(loop(), runner.perform)
        except Exception:
            log.exception("background loop failed; restarting it")
        await runner.sio.sleep(RESTART_AFTER)
