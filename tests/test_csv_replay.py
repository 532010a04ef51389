import os
from itertools import pairwise
from pathlib import Path

import pytest

from common.bars import MINUTE
from fetcher.sources.base import SourceError
from fetcher.sources.csv_replay import CsvFormatError, CsvReplaySource

NOW = 1_794_999_960.0  # on a minute boundary


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(text)
    return path


def test_replays_each_symbols_rows_in_a_loop_restamped_to_now(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "symbol,time,open,high,low,close,volume\n"
        "AAPL,2024-01-02 09:30,10,11,9,10.5,100\n"
        "AAPL,2024-01-02 09:31,10.5,12,10,11.5,200\n"
        "MSFT,2024-01-02 09:30,50,51,49,50.5,300\n",
    )
    source = CsvReplaySource(path)
    since = int(NOW) - 10 * MINUTE
    result = source.fetch({"AAPL": since, "MSFT": since, "TSLA": since}, NOW)
    aapl = result.bars["AAPL"]
    assert len(aapl) == 11
    assert {b.c for b in aapl} == {10.5, 11.5}
    assert all(b.t % MINUTE == 0 and b.t >= since for b in aapl)
    assert all(a.c != b.c for a, b in pairwise(aapl))  # rows alternate
    assert {b.c for b in result.bars["MSFT"]} == {50.5}
    assert result.bars["TSLA"] == [] and "not in the replayed file" in result.errors["TSLA"]
    assert source.fetch({"AAPL": since}, NOW).bars == {"AAPL": aapl}  # stateless


def test_a_file_without_symbols_serves_any_symbol(tmp_path: Path) -> None:
    path = write(tmp_path, "time,open,high,low,close,volume\n1,1,2,0.5,1.5,10\n")
    result = CsvReplaySource(path).fetch({"ZZZ": int(NOW) - 60}, NOW)
    assert [b.c for b in result.bars["ZZZ"]] == [1.5, 1.5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,open,high,low,close\n", "missing column"),
        ("time,open,high,low,close,volume\n", "no rows"),
        ("time,open,high,low,close,volume\n1,1,2,0.5,1.5,10\n2,1,2,0.5,-3,10\n", "row 3"),
        ("time,open,high,low,close,volume\n1,1,2,0.5,nan,10\n", "non-finite"),
        ("symbol,time,open,high,low,close,volume\nbad sym,1,1,2,0.5,1.5,10\n", "row 2"),
    ],
)
def test_a_bad_file_is_refused_with_the_place_named(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(CsvFormatError, match=message):
        CsvReplaySource(write(tmp_path, text))


def test_the_file_is_followed_live_and_its_absence_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "time,open,high,low,close,volume\n1,1,2,0.5,1.5,10\n")
    source = CsvReplaySource(path)
    since = {"X": int(NOW) - 60}
    assert {b.c for b in source.fetch(since, NOW).bars["X"]} == {1.5}
    path.write_text("time,open,high,low,close,volume\n1,2,3,1.5,2.5,10\n")
    os.utime(path, ns=(0, 10**18))  # a different mtime, however fast this runs
    assert {b.c for b in source.fetch(since, NOW).bars["X"]} == {2.5}
    path.unlink()
    with pytest.raises(SourceError, match="No such file"):
        source.fetch(since, NOW)
    path.write_text("time,open,high,low,close\n")
    with pytest.raises(SourceError, match="missing column"):
        source.fetch(since, NOW)
