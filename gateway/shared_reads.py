"""One Redis read for every client asking the same thing in the same turn of the event
loop: a crowd resubscribing after a restart reads each room's snapshot (or each seq's
resume) once, not once per client.

A read is shared only by those who asked before it was sent. That keeps the join's
order (gateway.core): each client holds its room's updates before it asks, so a read
sent after every sharer began holding misses no update any of them would need. The
first asker yields one turn (the server's ``sleep(0)``), so that the others reaching
the same step in that turn join it, then sends it; anyone asking later starts another.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from common.contract.lua import ScriptCall
from gateway import metrics

T = TypeVar("T")


class SharedReads:
    """``read(call)`` for calls that are equal when they read the same thing (frozen
    dataclasses); ``perform`` does the read: a result under eventlet, an awaitable under
    asyncio, as ``gateway.runner.Runner.run`` gives."""

    def __init__(
        self, perform: Callable[[ScriptCall[Any]], Any], sleep: Callable[[float], Any]
    ) -> None:
        self.perform, self.sleep = perform, sleep
        self.waiting: dict[
            ScriptCall[Any], Any
        ] = {}  # call -> future (asyncio) or Event (eventlet)
        self.reading: set[asyncio.Task[None]] = set()  # held, so none is collected early

    def read_async(self, call: ScriptCall[T]) -> Awaitable[T]:
        shared = self.waiting.get(call)
        if shared is not None:
            metrics.READS_SHARED.labels(type(call).__name__).inc()
            return cast(Awaitable[T], asyncio.shield(shared))
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # all its askers may have gone meanwhile
        self.waiting[call] = future

        async def read() -> None:
            await self.sleep(0)  # this turn's other askers join
            del self.waiting[call]  # from now on, an asker starts another read
            try:
                future.set_result(await self.perform(call))
            except BaseException as exc:  # every sharer gets it, as a read of its own
                future.set_exception(exc)

        # A task of its own, so that the asker going away (its client disconnects) does
        # not cancel the read the others wait for.
        reading = asyncio.ensure_future(read())
        self.reading.add(reading)
        reading.add_done_callback(self.reading.discard)
        return cast(Awaitable[T], asyncio.shield(future))

    def read(self, call: ScriptCall[T]) -> T:
        """Under eventlet: the same, with the first asker's green thread reading."""
        from eventlet.event import Event

        shared = self.waiting.get(call)
        if shared is not None:
            metrics.READS_SHARED.labels(type(call).__name__).inc()
            return cast(T, shared.wait())
        done = self.waiting[call] = Event()
        self.sleep(0)
        del self.waiting[call]
        try:
            result = self.perform(call)
        except BaseException as exc:
            done.send_exception(exc)
            raise
        done.send(result)
        return cast(T, result)


def _retrieved(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()  # seen: asyncio need not log it as never retrieved
