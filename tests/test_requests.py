import json
import logging

import orjson
import pytest
import socketio

from common.contract.packets import event_packet
from common.contract.rooms import Mode, Room, symbol_rooms
from common.logs import JsonFormatter, TextFormatter
from common.messages import OrjsonCodec, graph_plot_payload
from gateway.clients import Subscriptions
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


def test_subscriptions_track_clients_per_symbol() -> None:
    subs = Subscriptions()
    subs.add("a", "AAPL", Room.parse("figure:AAPL"))
    subs.add("b", "AAPL", Room.parse("figure:AAPL"))
    subs.add("a", "MSFT", Room.parse("bars:MSFT"))
    assert subs.counts() == {"AAPL": 2, "MSFT": 1}
    assert subs.held_by("a") == 2 and subs.holds("a", "MSFT")
    subs.add("a", "MSFT", Room.parse("figure:MSFT"))  # again, in another mode: still one
    assert subs.room_of("a", "MSFT") == Room.parse("figure:MSFT")
    assert subs.counts() == {"AAPL": 2, "MSFT": 1}
    assert sorted(subs.remove_client("a")) == ["AAPL", "MSFT"]
    assert subs.counts() == {"AAPL": 1}
    subs.remove("b", "AAPL")
    subs.remove("b", "AAPL")  # twice is harmless
    assert subs.symbols() == []


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


def test_subscriptions_count_the_viewers_of_each_view() -> None:
    subs = Subscriptions()
    subs.add("a", "AAPL", Room.parse("figure:AAPL@candles.5m.vol"))
    subs.add("b", "AAPL", Room.parse("bars:AAPL@candles.5m.vol"))
    subs.add("c", "AAPL", Room.parse("bars:AAPL"))
    assert subs.views() == [("AAPL", "candles.5m.vol")] and subs.counts() == {"AAPL": 3}
    subs.add(
        "a", "AAPL", Room.parse("figure:AAPL@ohlc.1h.vol")
    )  # a switch of view: still one symbol
    assert sorted(subs.views()) == [("AAPL", "candles.5m.vol"), ("AAPL", "ohlc.1h.vol")]
    subs.remove("b", "AAPL")
    subs.remove_client("a")
    assert subs.views() == [] and subs.counts() == {"AAPL": 1}
