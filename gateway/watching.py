"""Telling the fetcher which unconfigured symbols clients watch, within the one cap; and
the renderers which views of a symbol (common.views) clients watch. The stamps are the
contract's (common.contract.watching)."""

import time

from common.contract.watching import Watch, WatchView, symbol_slots
from common.settings import Settings


def watch_call(settings: Settings, symbol: str) -> Watch:
    now = time.time()
    slots = symbol_slots(settings.max_symbols, settings.symbols)
    return Watch(symbol, now, now - settings.watch_ttl, slots)


def watch_view_call(symbol: str, view: str, notify: bool) -> WatchView:
    return WatchView(symbol, view, time.time(), notify)


def refresh_every(settings: Settings) -> float:
    """How often a gateway re-stamps the symbols its clients watch: well inside the TTL."""
    return max(settings.watch_ttl / 4, 0.5)


def too_many(settings: Settings) -> str:
    return f"too many symbols tracked (RTPLOT_MAX_SYMBOLS={settings.max_symbols}); try later"
