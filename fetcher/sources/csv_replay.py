"""Replay a CSV file of 1-minute bars as a live feed.

The file has the columns ``time,open,high,low,close,volume`` and optionally ``symbol``
(without it, every symbol replays the same series). Its rows are a tape played on a
loop, one row per wall-clock minute and restamped to that minute: the bar for minute
``m`` is row ``(m / 60) mod N`` of the symbol's rows. That is stateless and the same in
every process, so any worker can serve any tick and a restart resumes where it was.

The file is read again when it changes, so a replay can be edited live; while it is
missing or unreadable every fetch fails with ``SourceError``, as a live source would.

History at a coarser resolution is the tape's minutes rolled up, on the clock the
symbol's charts use (its suffix's, around the clock: the replay says nothing of
sessions), a span at a time so that twenty years of daily bars never hold twenty years
of minutes at once.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.bars import MINUTE, BadBar, Bar, check_bar, floor_minute
from common.markets import market_for
from common.resolutions import Columns, Resolution, rollup_columns
from common.symbols import InvalidSymbol, normalize_symbol
from fetcher.sources.base import FetchResult, SourceError

Tape = list[tuple[float, float, float, float, int]]
# Minutes rolled up at once: a month's, about 2 MB of columns.
CHUNK_MINUTES = 31 * 1440

REQUIRED = ("time", "open", "high", "low", "close", "volume")
ANY_SYMBOL = "*"


class CsvFormatError(ValueError):
    """The file cannot be replayed; the message says where and why."""


def load_tapes(path: Path) -> dict[str, Tape]:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise CsvFormatError(f"{path}: cannot read CSV: {exc}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise CsvFormatError(f"{path}: missing column(s) {', '.join(missing)}")
    frame = frame.sort_values("time", kind="stable")
    tapes: dict[str, Tape] = {}
    for index, row in frame.to_dict("index").items():
        row_number = int(str(index)) + 2  # the header is line 1
        symbol = _row_symbol(path, row_number, row.get("symbol", ANY_SYMBOL))
        try:
            bar = check_bar(_bar(row))
        except (BadBar, ValueError, TypeError) as exc:
            raise CsvFormatError(f"{path}: row {row_number}: {exc}") from None
        tapes.setdefault(symbol, []).append((bar.o, bar.h, bar.l, bar.c, bar.v))
    if not tapes:
        raise CsvFormatError(f"{path}: no rows")
    return tapes


def _bar(row: dict[Any, Any]) -> Bar:
    prices = (float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]))
    return Bar(0, *prices, int(row["volume"]))


def _row_symbol(path: Path, row_number: int, raw: object) -> str:
    if raw == ANY_SYMBOL:
        return ANY_SYMBOL
    try:
        return normalize_symbol(raw)
    except InvalidSymbol as exc:
        raise CsvFormatError(f"{path}: row {row_number}: {exc}") from None


class CsvReplaySource:
    name = "csv"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = path.stat().st_mtime_ns
        self.tapes = load_tapes(path)

    def _reload_if_changed(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise SourceError(f"{self.path}: {exc.strerror or exc}") from None
        if stamp != self.stamp:
            try:
                self.tapes = load_tapes(self.path)
            except CsvFormatError as exc:
                raise SourceError(str(exc)) from None
            self.stamp = stamp

    def fetch(self, since: Mapping[str, int], now: float) -> FetchResult:
        self._reload_if_changed()
        current = floor_minute(now)
        result = FetchResult(bars={})
        for symbol, start in since.items():
            tape = self.tapes.get(symbol) or self.tapes.get(ANY_SYMBOL)
            if tape is None:
                result.bars[symbol] = []
                result.errors[symbol] = "not in the replayed file"
                continue
            first = floor_minute(start + MINUTE - 1)
            result.bars[symbol] = [
                Bar(m, *tape[(m // MINUTE) % len(tape)]) for m in range(first, current + 1, MINUTE)
            ]
        return result

    def history(
        self, resolution: Resolution, spans: Mapping[str, tuple[int, int]], now: float
    ) -> FetchResult:
        self._reload_if_changed()
        last = floor_minute(now)
        result = FetchResult(bars={})
        for symbol, (start, end) in spans.items():
            tape = self.tapes.get(symbol) or self.tapes.get(ANY_SYMBOL)
            if tape is None:
                result.bars[symbol] = []
                result.errors[symbol] = "not in the replayed file"
                continue
            result.bars[symbol] = _rolled(tape, resolution, symbol, (start, end), last)
        return result


def _rolled(
    tape: Tape, resolution: Resolution, symbol: str, span: tuple[int, int], last: int
) -> list[Bar]:
    """The tape's bars of ``resolution`` starting in ``span``, up to the minute ``last``."""
    market = market_for(symbol).always_open()
    columns = [np.array(column) for column in zip(*tape, strict=True)]
    start, end = span
    # The last bar wanted goes on after ``end`` (a daily bar starting just before it):
    # its minutes are rolled up too, the longest day's worth at most.
    stop = min(end + resolution.seconds + 3_600, last + MINUTE)
    parts = []
    for lo in range(floor_minute(start + MINUTE - 1), stop, CHUNK_MINUTES * MINUTE):
        minutes = np.arange(lo, min(lo + CHUNK_MINUTES * MINUTE, stop), MINUTE, dtype=np.int64)
        rows = (minutes // MINUTE) % len(tape)
        o, h, low, c, v = (column[rows] for column in columns)
        parts.append(rollup_columns(Columns(minutes, o, h, low, c, v), resolution, market))
    if not parts:
        return []
    # A bar split between two chunks is rolled up again from its two parts.
    bars = rollup_columns(Columns.join(parts), resolution, market)
    return bars.take((bars.t >= start) & (bars.t < end)).bars()
