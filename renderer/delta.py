"""The small update: only the bars that changed since a base version.

A delta is ``{symbol, seq, base_seq, epoch, start, [keep,] bars, style}``. A client
holding the figure of ``base_seq`` (same epoch) drops its points from the first delta
bar on, appends the delta's bars and applies ``style`` (only the keys that changed:
``color``, ``y_range``); it then holds exactly the figure of ``seq`` from ``start`` (the
chart's first minute) on. Points before ``start`` it may drop, or keep (a page that
loaded older bars with a ``history`` request does) but for those before ``keep``, when
the delta has one: a bar before the chart changed. A client at any other seq or epoch
asks for a snapshot.
Times (``start`` and each bar's ``t``) are on the exchange's clock, as the figure's x:
seconds since 1970-01-01 on that clock (renderer.window). Other views' deltas are
built in renderer.views.

The renderer builds two from each render: the live one from the previous render (the
snapshot's ``head``), published to the page's room, and the catch-up one from the
stored whole figure, which a page that subscribes now applies to it.
"""

from typing import Any

from renderer.window import Window


def changed_style(before: dict[str, Any] | None, style: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the base's style: usually nothing, or the colour."""
    before = before or {}
    return {key: value for key, value in style.items() if before.get(key) != value}


def build_delta(
    symbol: str,
    window: Window,
    base_seq: int,
    base_style: dict[str, Any] | None,
    style: dict[str, Any],
    since: int,
) -> dict[str, Any]:
    """The delta from ``base_seq`` to the window's version, whose versions changed
    nothing before minute ``since`` (UTC, as ``common.contract.changelog.first_changed`` says)."""
    delta: dict[str, Any] = {
        "symbol": symbol,
        "seq": window.version,
        "base_seq": base_seq,
        "epoch": window.epoch,
        "start": window.local_start(),
    }
    if since < int(window.rows[0, 0]):  # a change before the chart's first bar: a page
        delta["keep"] = delta["start"]  # holding older ones drops them (docs/views.md)
    delta["bars"] = window.rows_from(since)
    delta["style"] = changed_style(base_style, style)
    return delta
