import plotly.graph_objects as go
import pytest

from common.bars import Bar
from renderer.figure import DOWN, FLAT, UP, build_figure, direction_colour, y_range


def bars(*closes: float) -> list[Bar]:
    return [Bar(1_794_999_960 + 60 * i, c, c + 0.5, c - 0.5, c, 10) for i, c in enumerate(closes)]


def test_the_figure_is_a_valid_plotly_figure() -> None:
    figure = build_figure("AAPL", bars(100, 101, 102))
    validated = go.Figure(figure)  # raises on anything plotly.py would not accept
    trace = validated.data[0]
    assert trace.type == "scatter" and trace.fill == "tozeroy" and trace.mode == "lines"
    assert list(trace.y) == [100, 101, 102]
    assert validated.layout.xaxis.rangeslider.visible is True
    assert validated.layout.template.layout.paper_bgcolor == "rgb(17,17,17)"  # plotly_dark


def test_the_range_selector_is_the_articles() -> None:
    axis = build_figure("AAPL", bars(1, 2))["layout"]["xaxis"]
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
    assert direction_colour(bars(*closes)) == colour
    assert build_figure("X", bars(*closes))["data"][0]["line"]["color"] == colour


def test_the_y_range_hugs_the_data() -> None:
    assert y_range(bars(200, 250)) == [195, 255]  # the article's +-5
    lo, hi = y_range(bars(10, 12))  # a cheap symbol keeps its moves visible
    assert 9 < lo < 10 and 12 < hi < 13


def test_the_articles_bug_is_not_repeated() -> None:
    # The article passed yaxis_title to update_xaxes, which plotly rejects.
    with pytest.raises(ValueError):
        go.Figure().update_xaxes(yaxis_title="Price")
    figure = go.Figure(build_figure("AAPL", bars(1, 2)))
    assert figure.layout.yaxis.title.text == "Price"


def test_x_is_utc_epoch_milliseconds_on_a_date_axis() -> None:
    figure = build_figure("AAPL", bars(1, 2))
    assert figure["data"][0]["x"] == [1_794_999_960_000, 1_795_000_020_000]
    assert figure["layout"]["xaxis"]["type"] == "date"


def test_an_empty_window_still_builds() -> None:
    assert go.Figure(build_figure("AAPL", []))
