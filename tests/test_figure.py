import numpy as np
import orjson
import plotly.graph_objects as go
import pytest

from renderer.figure import DOWN, FLAT, UP, direction_colour, encode, y_range
from renderer.views import default_figure
from renderer.window import Window

START = 1_794_999_960


def window(*closes: float) -> Window:
    rows = [[START + 60 * i, c, c + 0.5, c - 0.5, c, 10] for i, c in enumerate(closes)]
    return Window("e1", 1, np.asarray(rows, dtype=np.float64).reshape(-1, 6))


def figure(*closes: float) -> dict[str, object]:
    """The figure as a client receives it: encoded, then parsed."""
    return orjson.loads(encode(default_figure("AAPL", window(*closes))))  # type: ignore[no-any-return]


def test_the_figure_is_a_valid_plotly_figure() -> None:
    validated = go.Figure(figure(100, 101, 102))  # raises on anything plotly.py would refuse
    trace = validated.data[0]
    assert trace.type == "scatter" and trace.fill == "tozeroy" and trace.mode == "lines"
    assert list(trace.y) == [100, 101, 102]
    assert validated.layout.xaxis.rangeslider.visible is True
    assert validated.layout.template.layout.paper_bgcolor == "rgb(17,17,17)"  # plotly_dark


def test_the_range_selector_is_the_articles() -> None:
    axis = figure(1, 2)["layout"]["xaxis"]  # type: ignore[index]
    buttons = axis["rangeselector"]["buttons"]
    assert axis["rangeselector"]["bgcolor"] == "black"
    assert [(b.get("label"), b.get("step"), b.get("stepmode")) for b in buttons] == [
        ("15m", "minute", "backward"),
        ("45m", "minute", "backward"),
        ("HTD", "hour", "todate"),
        ("3h", "hour", "backward"),
        (None, "all", None),
    ]


@pytest.mark.parametrize(
    ("closes", "colour"),
    [((100, 101), UP), ((101, 100), DOWN), ((100, 100), FLAT), ((100,), FLAT)],
)
def test_the_line_colour_tells_the_last_move(closes: tuple[float, ...], colour: str) -> None:
    assert direction_colour(np.array(closes, dtype=float)) == colour
    assert figure(*closes)["data"][0]["line"]["color"] == colour  # type: ignore[index]


def test_the_y_range_hugs_the_data() -> None:
    assert y_range(np.array([200.0, 250.0])) == [195, 255]  # the article's +-5
    lo, hi = y_range(np.array([10.0, 12.0]))  # a cheap symbol keeps its moves visible
    assert 9 < lo < 10 and 12 < hi < 13


def test_the_articles_bug_is_not_repeated() -> None:
    # The article passed yaxis_title to update_xaxes, which plotly rejects.
    with pytest.raises(ValueError):
        go.Figure().update_xaxes(yaxis_title="Price")
    assert go.Figure(figure(1, 2)).layout.yaxis.title.text == "Price"


def test_x_is_utc_epoch_milliseconds_on_a_date_axis() -> None:
    built = figure(1, 2)
    assert built["data"][0]["x"] == [1_794_999_960_000, 1_795_000_020_000]  # type: ignore[index]
    assert built["layout"]["xaxis"]["type"] == "date"  # type: ignore[index]


def test_an_empty_window_builds_a_figure_plotly_accepts() -> None:
    empty = figure()
    validated = go.Figure(empty)  # the check is that the constructor does not raise
    assert list(validated.data[0].x) == [] and "range" not in empty["layout"]["yaxis"]  # type: ignore[index]
