"""Bad input and hostile clients at the gateway, in both modes, against real processes."""

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import CLIENT_SOCKET_LEAK, Listener, Pipeline, record_reliability, running

pytestmark = [pytest.mark.e2e, CLIENT_SOCKET_LEAK]

TOKEN = "s3cret-token"
GOOD_ORIGIN = "http://charts.example.com"
LIMITS = {
    "auth_token": TOKEN,
    "allowed_origins": GOOD_ORIGIN,
    "rate_limit": "5",
    "rate_burst": "5",
    "max_subscriptions": "3",
    "max_message_bytes": "4096",
}
KINDS = {"strict": LIMITS, "lenient": {"rate_limit": "10000", "rate_burst": "10000"}}


@pytest.fixture(scope="module")
def gateways() -> Iterator[Pipeline]:
    """One strict gateway per mode (the limits above) and one lenient, for fuzzing; a
    gateway that died under bad input fails the module."""
    with running(symbols="AAPL") as pipeline:
        for mode in ("asyncio", "eventlet"):
            for kind, limits in KINDS.items():
                pipeline.launch(f"{mode}-{kind}", "gateway", "--mode", mode, **limits)
        pipeline.wait_healthy()
        yield pipeline


@pytest.fixture(params=["asyncio", "eventlet"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connect(url: str, **kwargs: Any) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10, **kwargs)
    return client


def test_a_missing_or_wrong_token_is_refused(gateways: Pipeline, mode: str) -> None:
    url = gateways.url(f"{mode}-strict")
    for auth in (None, {"token": "wrong"}, {"token": 42}, "token"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(url, auth=auth)
    good = connect(url, auth={"token": TOKEN})
    assert good.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
    good.disconnect()
    via_query = connect(f"{url}?token={TOKEN}")
    assert via_query.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
    via_query.disconnect()
    bad_input(
        mode,
        "connect with no, a wrong or a non-string token (RTPLOT_AUTH_TOKEN set)",
        'connection refused: "authentication failed"; the right token, in `auth` or '
        "`?token=`, connects",
    )


def handshake(url: str, origin: str) -> int:
    """The HTTP status of a raw WebSocket handshake sent with this Origin."""
    ws_url = (
        url.replace("http://", "ws://") + f"/socket.io/?EIO=4&transport=websocket&token={TOKEN}"
    )
    try:
        socket = websocket.create_connection(ws_url, origin=origin, timeout=5)
    except websocket.WebSocketBadStatusException as error:
        return int(error.status_code)
    socket.close()
    return 101


def test_a_disallowed_origin_is_refused(gateways: Pipeline, mode: str) -> None:
    url = gateways.url(f"{mode}-strict")
    assert handshake(url, GOOD_ORIGIN) == 101
    assert handshake(url, "http://evil.example.net") in (400, 403)
    bad_input(
        mode,
        "a WebSocket handshake from an Origin not in RTPLOT_ALLOWED_ORIGINS",
        "refused (HTTP 400/403); a listed origin and the page's own are admitted",
    )


def test_the_default_admits_only_the_pages_own_origin(gateways: Pipeline, mode: str) -> None:
    url = gateways.url(f"{mode}-lenient")
    assert handshake(url, url) == 101
    assert handshake(url, "http://evil.example.net") in (400, 403)


def test_the_event_rate_is_limited_per_connection(gateways: Pipeline, mode: str) -> None:
    url = gateways.url(f"{mode}-strict")
    client = connect(url, auth={"token": TOKEN})
    other = connect(url, auth={"token": TOKEN})
    try:
        acks = [client.call("unsubscribe", {"symbol": "AAPL"}, timeout=5) for _ in range(12)]
        refused = [a for a in acks if not a["ok"]]
        assert 1 <= len(refused) <= 7 and all("rate limited" in a["error"] for a in refused)
        assert acks[0]["ok"]  # the burst is admitted
        # Another connection has its own budget.
        assert other.call("unsubscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
        bad_input(
            mode,
            "more events than RTPLOT_RATE_LIMIT/RTPLOT_RATE_BURST on one connection",
            'each excess event acked {"ok": false, "error": "rate limited: slow down"}; '
            "other connections unaffected",
        )
    finally:
        client.disconnect()
        other.disconnect()


def test_a_flooding_client_is_disconnected(gateways: Pipeline, mode: str) -> None:
    url = gateways.url(f"{mode}-strict")
    client = connect(url, auth={"token": TOKEN})
    gone = threading.Event()
    client.on("disconnect", lambda *args: gone.set())
    for _ in range(300):
        if gone.is_set():
            break
        client.emit("snapshot", {"symbol": "AAPL"})
    assert gone.wait(10), "the flood went on"
    bad_input(
        mode, "a flood: 100 refused events in a row", "the connection is closed; others are served"
    )
    survivor = connect(url, auth={"token": TOKEN})
    assert survivor.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
    survivor.disconnect()


def test_subscriptions_per_connection_are_capped(gateways: Pipeline, mode: str) -> None:
    client = connect(gateways.url(f"{mode}-strict"), auth={"token": TOKEN})

    def call(event: str, symbol: str) -> Any:
        time.sleep(0.25)  # inside the 5 events/s budget: only the cap may refuse
        return client.call(event, {"symbol": symbol}, timeout=5)

    try:
        for symbol in ("AAPL", "MSFT", "TSLA"):
            assert call("subscribe", symbol)["ok"]
        assert call("subscribe", "NVDA") == {
            "ok": False,
            "error": "too many subscriptions on one connection (max 3)",
        }
        assert call("subscribe", "AAPL")["ok"]  # held already: not a new one
        assert call("unsubscribe", "TSLA")["ok"]
        assert call("subscribe", "NVDA")["ok"]
        bad_input(
            mode,
            "more subscriptions than RTPLOT_MAX_SUBSCRIPTIONS on one connection",
            '{"ok": false, "error": "too many subscriptions on one connection (max N)"}',
        )
    finally:
        client.disconnect()


def test_a_frame_over_the_limit_closes_only_that_connection(gateways: Pipeline, mode: str) -> None:
    url = gateways.url(f"{mode}-strict")
    big = connect(url, auth={"token": TOKEN})
    bystander = connect(url, auth={"token": TOKEN})
    gone = threading.Event()
    big.on("disconnect", lambda *args: gone.set())
    big.emit("subscribe", {"symbol": "A" * 100_000})
    assert gone.wait(10), "a 100 kB frame was accepted"
    assert bystander.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
    bystander.disconnect()
    bad_input(
        mode,
        "a 100 kB frame, over RTPLOT_MAX_MESSAGE_BYTES",
        "that connection is closed; a bystander on the same gateway is served",
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["symbol", "updates", "x", ""]) | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
events = st.sampled_from(
    [
        "subscribe",
        "unsubscribe",
        "snapshot",
        "ping_graph",
        "nonsense",
        "connect",
        "disconnect",
        "figure",
        "",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=events, payload=json_values)
def test_fuzzed_payloads_are_answered_or_ignored_never_fatal(
    gateways: Pipeline, event: str, payload: Any
) -> None:
    for mode in ("asyncio", "eventlet"):
        client = fuzz_client(gateways.url(f"{mode}-lenient"))
        try:
            # Reserved names are never dispatched, so no ack comes: do not wait long.
            ack = client.call(event, payload, timeout=1 if event in RESERVED else 5)
        except socketio.exceptions.TimeoutError:
            ack = None  # reserved names ("connect", ...) are not dispatched: no ack
        except socketio.exceptions.BadNamespaceError:
            ack = None
        if ack is not None:
            assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool)
            if not ack["ok"]:
                assert isinstance(ack["error"], str) and ack["error"]
        bad_input(
            mode,
            "fuzzed payloads (hypothesis: any JSON value) to subscribe, "
            "unsubscribe, snapshot, ping_graph and unknown events",
            'an ack {"ok": false, "error": "<reason>"} (or none for reserved names); '
            "the gateway stays up",
        )


RESERVED = ("connect", "disconnect")
_fuzz_clients: dict[str, socketio.Client] = {}


def fuzz_client(url: str) -> socketio.Client:
    client = _fuzz_clients.get(url)
    if client is None or not client.connected:
        client = _fuzz_clients[url] = connect(url)
    return client


MALFORMED = [
    "garbage",
    "",
    "4",
    "42",
    "42[",
    '42["subscribe",{"symbol":',
    "42{}",
    '42["subscribe"]',
    "9nonsense",
    "41",
    "40/nonexistent,",
    '42/nonexistent,["subscribe"]',
    "2probe",
    "6",
    '43["subscribe"]',
    "42" + "[" * 5000,
    '42["' + "x" * 3000 + '"]',
    '421["subscribe",{"symbol":"AAPL"}]',
    "42[1,2,3]",
    '42[null,{"symbol":"AAPL"}]',
]


@pytest.mark.parametrize("frame", MALFORMED, ids=lambda f: repr(f[:24]))
def test_malformed_frames_do_not_hurt_anyone_else(
    gateways: Pipeline, mode: str, frame: str
) -> None:
    url = gateways.url(f"{mode}-lenient")
    raw = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=5
    )
    try:
        assert raw.recv().startswith("0{")  # engine.io open
        raw.send("40")  # socket.io connect
        raw.send(frame)
        raw.send_binary(b"\x00\xff\xfe garbage")
    except (websocket.WebSocketException, OSError):
        pass  # the server may close on us: fine
    finally:
        raw.close()
    listener = Listener(url)
    try:
        assert listener.call("subscribe", {"symbol": "AAPL"}) == {"ok": True, "symbol": "AAPL"}
    finally:
        listener.close()
    bad_input(
        mode,
        "malformed frames: truncated or invalid JSON, unknown packet types and "
        "namespaces, 5,000-deep nesting, binary junk",
        "ignored or that connection closed; the next client is served normally",
    )


def test_the_fuzzed_gateways_still_serve_normally(gateways: Pipeline) -> None:
    for client in _fuzz_clients.values():
        if client.connected:
            client.disconnect()
    for mode in ("asyncio", "eventlet"):
        for kind in ("strict", "lenient"):
            url = gateways.url(f"{mode}-{kind}")
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                assert json.loads(response.read())["status"] == "ok"


def bad_input(mode: str, what: str, response: str) -> None:
    record_reliability("bad_input", {"input": what, "response": response, "mode": mode})
