"""The I/O the gateway's protocol core asks for, one step at a time, each typed with
what it hands back.

The core (``gateway.core``) asks with ``yield from ask(step)`` and gets the step's
result as its own type: ``stored = yield from ask(ReadSnapshot(symbol, view))`` is a
``Snapshot``. A driver (``gateway.runner``) performs each step on a live server, with
``await`` under asyncio and without under eventlet: ``step.perform(performer)`` calls
the performer's method for that step, whose return type mypy holds to the step's.
What went wrong on the way (Redis away, a timeout) reaches the core as ``StepFailed``,
whatever the library raised; the core never sees a socket's or a client library's
exception, nor an Engine.IO packet.
"""

from collections.abc import Awaitable, Generator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeAlias, TypeVar, cast

from common.contract.past import Past
from common.contract.resume import Resume
from common.contract.rooms import Room
from common.contract.snapshots import Snapshot
from common.contract.watching import ViewStamp
from common.views import View

R = TypeVar("R", covariant=True)
T = TypeVar("T")
# A performer's answer: the result, or (under asyncio) an awaitable of it.
Maybe: TypeAlias = T | Awaitable[T]


class StepFailed(Exception):
    """A step's I/O failed; the message says how (for the log)."""


class Step(Generic[R]):
    """Something the core asks a driver to do; ``R`` is what it hands back."""

    __slots__ = ()

    def perform(self, by: "Performer") -> "Maybe[R]":
        raise NotImplementedError


Steps: TypeAlias = Generator[Step[object], object, T]  # a core handler: asks, returns T


def ask(step: Step[T]) -> Steps[T]:
    """The step's result, typed: a driver sends back what ``step.perform`` gave."""
    result = yield step
    return cast(T, result)


@dataclass(frozen=True, slots=True)
class Watch(Step[bool]):
    """Stamp ``symbol`` as watched, so the fetcher tracks it: False when
    ``RTPLOT_MAX_SYMBOLS`` refuses a new symbol."""

    symbol: str

    def perform(self, by: "Performer") -> Maybe[bool]:
        return by.watch(self)


@dataclass(frozen=True, slots=True)
class WatchView(Step[ViewStamp]):
    """Stamp the view with key ``view`` of ``symbol`` as watched, so renderers render it
    while this gateway receives its rooms; with ``notify``, also ask for a render now
    (its snapshot may be old, or missing). A new view over a cap on views is not."""

    symbol: str
    view: str
    notify: bool = True

    def perform(self, by: "Performer") -> Maybe[ViewStamp]:
        return by.watch_view(self)


@dataclass(frozen=True, slots=True)
class ReadSnapshot(Step[Snapshot]):
    """The snapshot of the symbol's view with key ``view`` ("" the default view)."""

    symbol: str
    view: str = ""

    def perform(self, by: "Performer") -> Maybe[Snapshot]:
        return by.read_snapshot(self)


@dataclass(frozen=True, slots=True)
class ReadResume(Step[Resume]):
    """What carries a client holding ``seq`` of ``epoch`` of the view to its newest
    render (common.contract.resume)."""

    symbol: str
    view: str
    epoch: str
    seq: int

    def perform(self, by: "Performer") -> Maybe[Resume]:
        return by.read_resume(self)


@dataclass(frozen=True, slots=True)
class ReadPast(Step[Past]):
    """The rows of the view's last ``count`` bars before ``before`` (and from ``after``,
    if given), for a ``history`` request (common.contract.past)."""

    symbol: str
    view: View
    before: int
    count: int
    after: int | None = None

    def perform(self, by: "Performer") -> Maybe[Past]:
        return by.read_past(self)


@dataclass(frozen=True, slots=True)
class Listen(Step[None]):
    """Wait until this gateway receives ``room``'s updates (its channel subscribed and
    confirmed by Redis); fails after a timeout."""

    room: Room

    def perform(self, by: "Performer") -> Maybe[None]:
        return by.listen(self)


@dataclass(frozen=True, slots=True)
class Send(Step[None]):
    """Queue these Socket.IO packets (``common.contract.packets``) to the client, in
    order."""

    sid: str
    packets: tuple[bytes, ...]

    def perform(self, by: "Performer") -> Maybe[None]:
        return by.send(self)


@dataclass(frozen=True, slots=True)
class Disconnect(Step[None]):
    """Close the client's connection."""

    sid: str

    def perform(self, by: "Performer") -> Maybe[None]:
        return by.disconnect(self)


@dataclass(frozen=True, slots=True)
class DropSlowConsumers(Step[list[int]]):
    """Close every client with more than ``limit`` packets waiting (it stopped reading)
    and free them: how many packets each dropped client had waiting."""

    limit: int

    def perform(self, by: "Performer") -> Maybe[list[int]]:
        return by.drop_slow_consumers(self)


@dataclass(frozen=True, slots=True)
class Sleep(Step[None]):
    """Let ``seconds`` pass."""

    seconds: float

    def perform(self, by: "Performer") -> Maybe[None]:
        return by.sleep(self)


class Performer(Protocol):
    """What a driver does for each step."""

    def watch(self, step: Watch) -> Maybe[bool]: ...
    def watch_view(self, step: WatchView) -> Maybe[ViewStamp]: ...
    def read_snapshot(self, step: ReadSnapshot) -> Maybe[Snapshot]: ...
    def read_resume(self, step: ReadResume) -> Maybe[Resume]: ...
    def read_past(self, step: ReadPast) -> Maybe[Past]: ...
    def listen(self, step: Listen) -> Maybe[None]: ...
    def send(self, step: Send) -> Maybe[None]: ...
    def disconnect(self, step: Disconnect) -> Maybe[None]: ...
    def drop_slow_consumers(self, step: DropSlowConsumers) -> Maybe[list[int]]: ...
    def sleep(self, step: Sleep) -> Maybe[None]: ...
