"""The small update: only the bars that changed since the previous snapshot.

A delta is ``{symbol, seq, base_seq, start, bars, style}``. A client holding the figure
of ``base_seq`` drops its points from the first delta bar on, appends the delta's bars,
drops points before ``start`` (the window's first minute) and applies ``style`` (only the
keys that changed: ``color``, ``y_range``); it then
holds exactly the figure of ``seq``. A client at any other seq asks for a snapshot.
"""

from typing import Any

from renderer.figure import style_of
from renderer.snapshots import Window


def first_changed(window: Window) -> int | None:
    """The earliest minute changed between the previous snapshot and this window:
    None if there is no previous snapshot to be a delta from, 0 if the changelog no
    longer covers every version in between (then the delta carries every bar)."""
    base = window.previous_seq
    if base is None or base >= window.version:
        return None
    versions = range(base + 1, window.version + 1)
    if any(v not in window.changelog for v in versions):
        return 0
    changed = [window.changelog[v] for v in versions if window.changelog[v] >= 0]
    return min(changed) if changed else window.bars[-1].t + 1


def changed_style(window: Window, style: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the base snapshot's style: usually nothing, or the colour."""
    before = window.previous_style or {}
    return {key: value for key, value in style.items() if before.get(key) != value}


def build_delta(
    symbol: str, window: Window, style: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """``style`` is ``style_of(window.bars)``, passed in by a caller that already has it."""
    since = first_changed(window)
    if since is None or not window.bars:
        return None
    return {
        "symbol": symbol,
        "seq": window.version,
        "base_seq": window.previous_seq,
        "start": window.bars[0].t,
        "bars": [bar.as_list() for bar in window.bars if bar.t >= since],
        "style": changed_style(window, style_of(window.bars) if style is None else style),
    }
