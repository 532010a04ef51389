"""Chaining ``bars`` deltas: the one delta that takes a page from the base of the first
to the seq of the last, as applying each in turn would (docs/views.md says how a page
applies one). A gateway sends it to a client that resumes from a seq it held
(gateway.resume), instead of the whole figure.

A page's bars are sorted by x, one per x. Applying a delta keeps the bars in
``[start, first row's x)``, overwrites the first of them with ``head`` (rows of the same
x: the renderer resends a bar whose values changed because the window moved on) and
appends ``bars``. So, of a delta A followed by B:

- of the page's own bars, what both keep is ``[max(startA, startB), first row of B)``;
- A's appended rows in ``[startB, first row of B)`` are kept, B's head overwriting
  those of the same x;
- A's head rows in that span stay overwritten, B's head over them;
- B's rows are appended, and B's style goes over A's.

Within an epoch a bar, once in a window, stays until the window's start passes it (a
later render has every x an earlier one had from its own start on); a revision may
add one before the first. That is what lets the composed head and rows stand for the
bars a page held.
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
    keep_from = max(first["start"], then["start"])  # the page's own bars kept from here
    bars_then = then["bars"]
    cut = bars_then[0][0] if bars_then else INF
    over = {row[0]: row for row in then.get("head", ())}
    head = [row for row in first.get("head", ()) if keep_from <= row[0] < cut]
    kept = [row for row in first["bars"] if then["start"] <= row[0] < cut]
    kept = [over.pop(row[0], row) for row in kept]  # B's head over A's appended rows
    held = {row[0]: row for row in head}
    held.update(over)  # B's head over the page's own bars (and over A's head)
    bars = kept + list(bars_then)
    composed: Delta = {key: value for key, value in then.items() if key != "head"}
    composed["base_seq"] = first["base_seq"]
    # A bar written before the window's first (a revision) moves the start back, and is
    # among the bars: no start after the first of them, as in the renderer's deltas.
    composed["start"] = min(keep_from, bars[0][0]) if bars else keep_from
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
