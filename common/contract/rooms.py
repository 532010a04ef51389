"""Rooms: who gets which updates of a symbol, named once for every service.

A room is a symbol, a mode (what its clients are sent) and a view (common.views; the
default view, the article's chart, has the empty key). Its name is what python-socketio
and the room's Redis channel (``Keys.channel``) carry: ``figure:AAPL``, ``bars:AAPL``,
``graph_plot:AAPL`` for the default view, ``bars:AAPL@candles.5m.vol`` for another. The
default view's names are the ones rooms always had, so older gateways and the article's
client keep working.
"""

from dataclasses import dataclass, replace
from enum import StrEnum

from common.messages import BARS, FIGURE, GRAPH_PLOT

VIEW_MARK = "@"  # between a room's symbol and its view key


class Mode(StrEnum):
    """What a room's clients are sent; the value starts the room's name."""

    FIGURE = "figure"  # `figure` events: a whole figure per render
    DELTA = "bars"  # `bars` events: the page's small updates, after one whole figure
    ARTICLE = "graph_plot"  # `graph_plot` events: the article's client, default view only


EVENTS = {Mode.FIGURE: FIGURE, Mode.DELTA: BARS, Mode.ARTICLE: GRAPH_PLOT}
# A view is rendered while a gateway is subscribed to one of these rooms of it.
WATCHING_MODES = (Mode.DELTA, Mode.FIGURE)


@dataclass(frozen=True, slots=True)
class Room:
    symbol: str
    mode: Mode = Mode.FIGURE
    view: str = ""  # the view's key (common.views.View.key); "" the default view

    def __post_init__(self) -> None:
        if self.mode is Mode.ARTICLE and self.view:
            raise ValueError("the article's client has the default view only")

    @property
    def name(self) -> str:
        base = f"{self.mode.value}:{self.symbol}"
        return f"{base}{VIEW_MARK}{self.view}" if self.view else base

    @property
    def event(self) -> str:
        """The Socket.IO event the room's clients are sent updates in."""
        return EVENTS[self.mode]

    def with_view(self, view: str) -> "Room":
        return replace(self, view=view)

    @classmethod
    def parse(cls, name: str) -> "Room":
        """The room a name names; ValueError if it names none."""
        mode, colon, rest = name.partition(":")
        symbol, _, view = rest.partition(VIEW_MARK)
        if not colon or not symbol:
            raise ValueError(f"{name!r} is not a room name")
        return cls(symbol, Mode(mode), view)

    def __str__(self) -> str:
        return self.name


def views_prefix(symbol: str, mode: Mode) -> str:
    """The name of the symbol's ``mode`` room of any view but the default, less the view
    key: a script that reads view keys appends them (``Keys.views_channel_prefix``)."""
    return f"{mode.value}:{symbol}{VIEW_MARK}"


def symbol_rooms(symbol: str) -> tuple[Room, ...]:
    """The default view's rooms of a symbol, one per mode."""
    return tuple(Room(symbol, mode) for mode in Mode)


def whole_figure_rooms(symbol: str, view: str) -> tuple[Room, ...]:
    """The rooms a render of the view sends whole figures to, where someone watches: its
    figure room and, for the default view, the article's."""
    if view:
        return (Room(symbol, Mode.FIGURE, view),)
    return Room(symbol, Mode.FIGURE), Room(symbol, Mode.ARTICLE)
