import json
import logging

import orjson
import pytest
import socketio

from common.contract.packets import event_packet
from common.contract.rooms import Mode, symbol_rooms
from common.logs import JsonFormatter, TextFormatter
from common.messages import OrjsonCodec, graph_plot_payload
from gateway.requests import BadRequest, requested_symbol, requested_updates


@pytest.mark.parametrize(("data", "symbol"), [({"symbol": "aapl"}, "AAPL"), ("brk-b", "BRK-B")])
def test_requested_symbol(data: object, symbol: str) -> None:
    assert requested_symbol(data) == symbol


@pytest.mark.parametrize(
    "data", [None, 3, [], {}, {"sym": "AAPL"}, {"symbol": 3}, {"symbol": "A B"}]
)
def test_bad_requests_say_why(data: object) -> None:
    with pytest.raises(BadRequest) as error:
        requested_symbol(data)
    assert str(error.value)


def test_graph_plot_payload_is_the_figure_as_a_json_string() -> None:
    figure = orjson.dumps({"data": [1], "layout": {}})
    assert json.loads(json.loads(graph_plot_payload(figure))) == {"data": [1], "layout": {}}


def test_an_event_packet_is_what_python_socketio_encodes() -> None:
    payload = {"symbol": "X", "seq": 3, "figure": {"data": [1.5], "layout": {}}}
    theirs = socketio.packet.Packet(socketio.packet.EVENT, data=["figure", payload]).encode()
    assert event_packet("figure", orjson.dumps(payload)).decode() == theirs


@pytest.mark.parametrize(
    ("data", "mode"),
    [({"symbol": "A"}, Mode.FIGURE), ({"updates": "delta"}, Mode.DELTA), ("A", Mode.FIGURE)],
)
def test_requested_updates(data: object, mode: Mode) -> None:
    assert requested_updates(data) == mode


def test_a_symbol_has_three_rooms() -> None:
    names = [room.name for room in symbol_rooms("AAPL")]
    assert names == ["figure:AAPL", "bars:AAPL", "graph_plot:AAPL"]


def test_the_socketio_codec_matches_the_standard_library() -> None:
    value = {"a": [1, 2.5, "é"], "b": None}
    text = OrjsonCodec.dumps(value, separators=(",", ":"))
    assert isinstance(text, str)
    assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert OrjsonCodec.loads(text) == value


def record() -> logging.LogRecord:
    return logging.LogRecord("rtplot.renderer", logging.INFO, __file__, 1, "rendered", None, None)


def test_json_logs_carry_the_extra_fields() -> None:
    entry = record()
    entry.symbol, entry.seq = "AAPL", 7
    line = json.loads(JsonFormatter("renderer").format(entry))
    assert line["service"] == "renderer" and line["msg"] == "rendered"
    assert (line["symbol"], line["seq"]) == ("AAPL", 7)


def test_text_logs_carry_the_extra_fields() -> None:
    entry = record()
    entry.symbol = "AAPL"
    assert TextFormatter("renderer").format(entry).endswith("rendered symbol=AAPL")


def test_a_subscribe_names_a_view_and_its_room() -> None:
    from common.views import DEFAULT
    from gateway.requests import requested_view, subscription_room

    view = requested_view({"symbol": "AAPL", "chart": "candles", "timeframe": "5m"})
    assert view.key == "candles.5m.vol"
    assert subscription_room("AAPL", Mode.DELTA, view).name == "bars:AAPL@candles.5m.vol"
    assert subscription_room("AAPL", Mode.FIGURE, DEFAULT).name == "figure:AAPL"
    assert requested_view("AAPL") == DEFAULT and requested_view({"symbol": "AAPL"}) == DEFAULT
    with pytest.raises(BadRequest, match='unknown field "timeFrame"'):
        requested_view({"symbol": "AAPL", "timeFrame": "5m"})
