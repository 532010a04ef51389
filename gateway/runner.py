"""Driving the protocol core on a live server, under asyncio or eventlet.

python-socketio and redis-py give the asyncio and the eventlet server the same methods,
returning a coroutine under asyncio and the result under eventlet. So each step is
performed by one method here, whichever the server; ``drive_async`` awaits what needs
awaiting and ``drive`` has nothing to await. The drivers own what the core must not
see: an I/O error of any library becomes ``StepFailed``, and the Socket.IO packets the
core sends are put in Engine.IO packets here.
"""

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import redis
import redis.asyncio
import socketio
from engineio import packet as eio_packet

from common.contract.keys import Keys
from common.contract.lua import ScriptCall, Scripts
from common.contract.past import Past
from common.contract.past import ReadPast as ReadStoredPast
from common.contract.resume import ReadResume as ReadLogged
from common.contract.resume import Resume
from common.contract.snapshots import ReadSnapshot as ReadStored
from common.contract.snapshots import Snapshot
from common.contract.watching import ViewStamp
from common.settings import Settings
from gateway import internals, steps
from gateway.core import GatewayCore, Handler
from gateway.internals import websocket
from gateway.shared_reads import SharedReads
from gateway.steps import Maybe, Step, StepFailed, Steps
from gateway.watching import watch_call, watch_view_call

log = logging.getLogger("rtplot.gateway")

T = TypeVar("T")
LISTEN_TIMEOUT = 5.0  # seconds a subscribe waits for its room's channel to be confirmed
RESTART_AFTER = 1.0  # seconds before a background loop that failed runs again
# What a step's I/O may raise; each reaches the core as StepFailed.
IO_ERRORS = (redis.RedisError, OSError, TimeoutError)


class Runner:
    """Performs steps (``gateway.steps.Performer``) with ``sio``
    (``socketio.AsyncServer`` or ``Server``), its relay manager and ``redis`` (a
    ``redis.asyncio.Redis`` or ``redis.Redis``)."""

    def __init__(self, sio: Any, redis_client: Any, settings: Settings) -> None:
        self.sio, self.settings = sio, settings
        self.manager = sio.manager
        self.scripts = Scripts(redis_client, Keys(settings.key_prefix))
        self.is_async = isinstance(redis_client, redis.asyncio.Redis)
        self.shared = SharedReads(self.run, sio.sleep)

    def perform(self, step: Step[object]) -> object:
        """The step's result, or (under asyncio) an awaitable of it."""
        return step.perform(self)

    def run(self, call: ScriptCall[T]) -> Maybe[T]:
        """A script of the contract: its reply, or (under asyncio) an awaitable of it."""
        return self.scripts.run_async(call) if self.is_async else self.scripts.run(call)

    def watch(self, step: steps.Watch) -> Maybe[bool]:
        return self.run(watch_call(self.settings, step.symbol))

    def watch_view(self, step: steps.WatchView) -> Maybe[ViewStamp]:
        return self.run(watch_view_call(self.settings, step.symbol, step.view, step.notify))

    def read_snapshot(self, step: steps.ReadSnapshot) -> Maybe[Snapshot]:
        return self.read_shared(ReadStored(step.symbol, step.view))

    def read_resume(self, step: steps.ReadResume) -> Maybe[Resume]:
        return self.read_shared(ReadLogged(step.symbol, step.view, step.epoch, step.seq))

    def read_past(self, step: steps.ReadPast) -> Maybe[Past]:
        call = ReadStoredPast(step.symbol, step.view, step.before, step.count, step.after)
        return self.read_shared(call)

    def read_shared(self, call: ScriptCall[T]) -> Maybe[T]:
        """A read, shared with whoever asks the same in this turn (gateway.shared_reads)."""
        if self.is_async:
            return self.shared.read_async(call)
        result: T = self.shared.read(call)
        return result

    def listen(self, step: steps.Listen) -> Maybe[None]:
        return cast(Maybe[None], self.manager.listen_room(step.room, LISTEN_TIMEOUT))

    def send(self, step: steps.Send) -> Maybe[None]:
        eio_sid = self.eio_sid(step.sid)
        if eio_sid is None:
            return None
        packets = [eio_packet.Packet(eio_packet.MESSAGE, p.decode()) for p in step.packets]
        return cast(Maybe[None], self.manager.outbox.send((eio_sid,), packets))

    def disconnect(self, step: steps.Disconnect) -> Maybe[None]:
        return cast(Maybe[None], self.sio.disconnect(step.sid))

    def drop_slow_consumers(self, step: steps.DropSlowConsumers) -> Maybe[list[int]]:
        overfull = self.manager.outbox.overfull(step.limit)
        drops = [
            lambda eio_sid=eio_sid: self.manager.outbox.drop(eio_sid) for eio_sid, _ in overfull
        ]
        return in_order(drops, [queued for _, queued in overfull])

    def sleep(self, step: steps.Sleep) -> Maybe[None]:
        return cast(Maybe[None], self.sio.sleep(step.seconds))

    def eio_sid(self, sid: str) -> str | None:
        try:
            eio_sid: str | None = self.manager.eio_sid_from_sid(sid, "/")
        except KeyError:  # nobody is connected any more
            return None
        return eio_sid


def in_order(calls: Sequence[Callable[[], Any]], result: T) -> Maybe[T]:
    """Make the calls one after another, then ``result``; under asyncio, a coroutine
    that awaits each."""
    for i, call in enumerate(calls):
        outcome = call()
        if inspect.isawaitable(outcome):
            return _finish_in_order(outcome, calls[i + 1 :], result)
    return result


async def _finish_in_order(
    first: Awaitable[Any], rest: Sequence[Callable[[], Any]], result: T
) -> T:
    await first
    for call in rest:
        outcome = call()
        if inspect.isawaitable(outcome):
            await outcome
    return result


# -- driving the core's generators ---------------------------------------------------------


def drive(work: Steps[T], perform: Callable[[Step[object]], object]) -> T:
    """Run a core generator to its end, performing each step as it comes."""
    result: object = None
    failed: StepFailed | None = None
    while True:
        try:
            step = work.send(result) if failed is None else work.throw(failed)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            result, failed = perform(step), None
        except IO_ERRORS as exc:
            result, failed = None, _failed(exc)


async def drive_async(work: Steps[T], perform: Callable[[Step[object]], object]) -> T:
    """``drive``, awaiting each step that returns an awaitable."""
    result: object = None
    failed: StepFailed | None = None
    while True:
        try:
            step = work.send(result) if failed is None else work.throw(failed)
        except StopIteration as done:
            return cast(T, done.value)
        try:
            result, failed = perform(step), None
            if inspect.isawaitable(result):
                result = await result
        except IO_ERRORS as exc:
            result, failed = None, _failed(exc)


def _failed(exc: BaseException) -> StepFailed:
    return StepFailed(f"{type(exc).__name__}: {exc}")


def register(sio: Any, core: GatewayCore, wrap: Callable[[Handler], Callable[..., Any]]) -> None:
    """The core's handlers on a server, each wrapped to be driven in its mode."""
    # Under asyncio the request need not be kept once read (under eventlet, its WSGI
    # server still reads it after the handler).
    release = internals.enabled() and isinstance(sio, socketio.AsyncServer)
    sio.on("connect", _connect_handler(sio, core, release))
    for event, handler in core.handlers().items():
        sio.on(event, wrap(handler))


def _connect_handler(sio: Any, core: GatewayCore, release: bool) -> Callable[..., None]:
    def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        admitted = core.connect(sid, eio_sid, environ, auth)
        if release:
            websocket.release_request(environ)
        if not admitted:
            reason = "draining: connect again" if core.draining else "authentication failed"
            raise socketio.exceptions.ConnectionRefusedError(reason)

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
