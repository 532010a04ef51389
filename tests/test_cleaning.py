from common.bars import Bar
from common.resolutions import Columns
from fetcher.cleaning import clean, clean_columns

T = 1_794_999_960


def bar(t: int, c: float, **changes: float) -> Bar:
    values = {"o": c, "h": c + 1, "l": c - 1, "c": c, "v": 10} | changes
    return Bar(t, values["o"], values["h"], values["l"], values["c"], int(values["v"]))


def test_out_of_order_and_duplicate_minutes_become_one_ordered_series() -> None:
    result = clean([bar(T + 120, 12), bar(T, 10), bar(T + 60, 11), bar(T + 60, 11.5)])
    assert [(b.t, b.c) for b in result.bars] == [(T, 10), (T + 60, 11.5), (T + 120, 12)]
    assert result.rejected == []


def test_insane_bars_are_refused_with_a_reason() -> None:
    bad = [
        bar(T + 60, float("nan")),
        bar(T + 120, 0.0, l=-1, o=0.5),
        bar(T + 180, -3, h=1, l=-4, o=-3),
        bar(T + 240, 10, h=9),  # high below close
        bar(T + 300, 10, v=-5),
        Bar(T + 330, 10, 11, 9, 10, 1),  # not on a minute
    ]
    result = clean([bar(T, 10), *bad])
    assert [b.t for b in result.bars] == [T]
    assert len(result.rejected) == len(bad) and all(reason for _, reason in result.rejected)


def test_an_absurd_jump_is_flagged_and_refused() -> None:
    result = clean([bar(T, 100), bar(T + 60, 1000), bar(T + 120, 101), bar(T + 180, 40)])
    assert [b.c for b in result.bars] == [100, 101]
    assert [reason for _, reason in result.rejected] == [
        "close 1000 jumps from 100",
        "close 40 jumps from 101",
    ]


def test_bars_given_as_columns_are_cleaned_as_bars_are() -> None:
    """History comes as columns (years of it): the same bars are kept, in order, the
    last word winning for a minute given twice."""
    given = [
        bar(T + 120, 12),
        bar(T, 10),
        bar(T + 60, 11),
        bar(T + 60, 11.5),
        bar(T + 180, float("nan")),
        bar(T + 240, 10, h=9),
        bar(T + 300, 10, v=-5),
        Bar(T + 330, 10, 11, 9, 10, 1),
        bar(T + 360, 11),
    ]
    kept = [tuple(b.as_list()) for b in clean(given).bars]
    assert clean_columns(Columns.of(given)) == kept
    assert [row[0] for row in kept] == [T, T + 60, T + 120, T + 360]
    assert clean_columns(Columns.of([bar(T, 100), bar(T + 60, 1000)])) == [
        (T, 100.0, 101.0, 99.0, 100.0, 10)
    ]
