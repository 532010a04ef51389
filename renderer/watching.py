"""Who watches what this renderer draws: the one place it decides which views of a
symbol to render, which rooms are sent whole figures, and which renders store theirs.

What gateways subscribe to comes from the store's own count of each room's subscribers
(common.contract.snapshots: the read counts a listed view's rooms, the write its
whole-figure rooms, after the store); this is what the renderer makes of it.
"""

from common.contract.rooms import Room
from common.contract.snapshots import Read, Written


class Audience:
    def __init__(self) -> None:
        # (symbol, view key) whose whole figures some gateway received at the last render:
        # they are built for every render anyway, and stored too, so a figure-mode client
        # that resubscribes gets the newest figure, never one older than it has seen.
        self._taking_figures: set[tuple[str, str]] = set()

    @staticmethod
    def views(read: Read) -> list[str]:
        """The listed views (other than the default one, always rendered) that some
        gateway receives now."""
        return [key for key, gateways in (read.views or {}).items() if gateways]

    def figure_rooms(self, symbol: str, view: str, written: Written) -> set[Room]:
        """The rooms a stored render's whole figure goes to: those someone receives."""
        rooms = {room for room, gateways in written.watchers.items() if gateways}
        if rooms:
            self._taking_figures.add((symbol, view))
        else:
            self._taking_figures.discard((symbol, view))
        return rooms

    def takes_figures(self, symbol: str, view: str) -> bool:
        """Whether the last render of the view sent its whole figure to someone: then
        this one stores its whole figure too."""
        return (symbol, view) in self._taking_figures
