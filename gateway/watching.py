"""What this gateway's clients watch, told to the fetcher (symbols, within the one cap)
and to the renderers (views of a symbol, common.views): the one place the gateway
decides what it stamps. The stamps themselves are the contract's
(common.contract.watching)."""

import time

from common.contract.watching import ViewStamp, Watch, WatchView, symbol_slots
from common.settings import Settings
from gateway import steps
from gateway.membership import Membership


class Watching:
    def __init__(self, settings: Settings, membership: Membership) -> None:
        self.settings, self.membership = settings, membership

    def needs_stamp(self, symbol: str) -> bool:
        """Configured symbols are always tracked; any other is while it is stamped."""
        return symbol not in self.settings.symbols

    def restamps(self) -> list[steps.Watch | steps.WatchView]:
        """The stamps that keep what clients here hold watched: each symbol that needs
        one, and each view other than the default one (no render asked: it has one)."""
        stamps: list[steps.Watch | steps.WatchView] = [
            steps.Watch(symbol) for symbol in self.membership.symbols() if self.needs_stamp(symbol)
        ]
        stamps += [
            steps.WatchView(symbol, view, notify=False) for symbol, view in self.membership.views()
        ]
        return stamps

    @property
    def refresh_every(self) -> float:
        """How often the stamps are renewed: well inside RTPLOT_WATCH_TTL."""
        return max(self.settings.watch_ttl / 4, 0.5)

    def too_many(self) -> str:
        cap = self.settings.max_symbols
        return f"too many symbols tracked (RTPLOT_MAX_SYMBOLS={cap}); try later"

    def too_many_views(self, symbol: str, stamp: ViewStamp) -> str:
        if stamp is ViewStamp.OVER_SYMBOL_CAP:
            cap = self.settings.max_views_per_symbol
            return (
                f"too many views of {symbol} watched (RTPLOT_MAX_VIEWS_PER_SYMBOL={cap}); "
                "choose one already shown, or try later"
            )
        cap = self.settings.max_views
        return f"too many views watched (RTPLOT_MAX_VIEWS={cap}); try later"


def watch_call(settings: Settings, symbol: str) -> Watch:
    """The contract's stamp of a symbol, under the one cap."""
    now = time.time()
    slots = symbol_slots(settings.max_symbols, settings.symbols)
    return Watch(symbol, now, now - settings.watch_ttl, slots)


def watch_view_call(settings: Settings, symbol: str, view: str, notify: bool) -> WatchView:
    """The contract's stamp of a view, under the caps on views."""
    now = time.time()
    live_since = now - settings.watch_ttl
    return WatchView(
        symbol, view, now, notify, live_since, settings.max_views_per_symbol, settings.max_views
    )
