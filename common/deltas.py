"""Chaining ``bars`` deltas: the one delta that takes a page from the base of the first
to the seq of the last, as applying each in turn would (docs/views.md says how a page
applies one). A gateway sends it to a client that resumes from a seq it held
(gateway.resume), instead of the whole figure.

A page's bars are sorted by x, one per x. Applying a delta drops the bars before
``keep`` (when it has one) and from the first row's x on, overwrites those of the same
x as a ``head`` row (the renderer resends a bar whose values changed because the window
moved on) and appends ``bars`` (docs/views.md; a page that drops its bars before
``start`` as well holds the same chart). So, of a delta A followed by B, with ``cut``
the x of B's first row:

- of the page's own bars, what both keep is ``[max(keepA, keepB), min(first row of A,
  cut))``: none when B's keep is past A's first row;
- A's rows in ``[keepB, cut)`` are kept, B's head overwriting those of the same x;
- A's head rows that are kept stay written, B's head over them;
- B's rows are appended, and B's style goes over A's.

Within an epoch a bar, once written, keeps its values until a delta's ``head`` or
``bars`` rewrite it or its ``keep`` drops it; that is what lets the composed head and
rows stand for the bars a page held.
"""

from collections.abc import Sequence
from typing import Any

Delta = dict[str, Any]

INF = float("inf")


class Broken(ValueError):
    """The deltas do not follow one another (a seq missing, another epoch or view)."""


def compose(first: Delta, then: Delta) -> Delta:
    """The delta equal to applying ``first`` and then ``then``."""
    if then["base_seq"] != first["seq"]:
        raise Broken(f"seq {first['seq']} is followed by a delta from {then['base_seq']}")
    for name in ("symbol", "epoch", "view"):
        if first.get(name) != then.get(name):
            raise Broken(f"{name} changed between seq {first['seq']} and {then['seq']}")
    keep_first, keep_then = first.get("keep", -INF), then.get("keep", -INF)
    bars_first, bars_then = first["bars"], then["bars"]
    cut = bars_then[0][0] if bars_then else INF
    over = {row[0]: row for row in then.get("head", ())}
    kept = [row for row in bars_first if keep_then <= row[0] < cut]
    kept = [over.pop(row[0], row) for row in kept]  # B's head over A's appended rows
    bars = kept + list(bars_then)
    keep = max(keep_first, keep_then)
    if bars_first and keep_then > bars_first[0][0] and bars:
        keep = max(keep, bars[0][0])  # B dropped every bar the page held before A's rows
    last = bars[0][0] if bars else INF  # the page's own bars are kept before it
    head = [row for row in first.get("head", ()) if keep <= row[0] < last]
    held = {row[0]: row for row in head}
    held.update((x, row) for x, row in over.items() if keep <= x < last)  # over own bars
    composed: Delta = {key: value for key, value in then.items() if key not in ("head", "keep")}
    composed["base_seq"] = first["base_seq"]
    if keep != -INF:
        composed["keep"] = keep
    if held:
        composed["head"] = [held[x] for x in sorted(held)]
    composed["bars"] = bars
    composed["style"] = {**first.get("style", {}), **then.get("style", {})}
    return composed


def chain(deltas: Sequence[Delta], base_seq: int, seq: int) -> Delta:
    """The one delta from ``base_seq`` to ``seq`` made of ``deltas`` (in seq order, as
    stored); ``Broken`` if they do not lead from one to the other."""
    if not deltas:
        raise Broken(f"nothing leads from seq {base_seq} to {seq}")
    if deltas[0]["base_seq"] != base_seq:
        raise Broken(f"the oldest delta kept starts at seq {deltas[0]['base_seq']}")
    composed = deltas[0]
    for delta in deltas[1:]:
        composed = compose(composed, delta)
    if composed["seq"] != seq:
        raise Broken(f"the deltas lead to seq {composed['seq']}, not {seq}")
    return composed
