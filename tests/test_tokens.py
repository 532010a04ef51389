"""Per-user tokens at the gateway, in both modes, against real processes: what is refused
at connect, the symbols a token allows, a session ended at its token's expiry, and no
token in any log line, /metrics or /healthz."""

import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support import CLIENT_SOCKET_LEAK, Pipeline, record_reliability, running

pytestmark = [pytest.mark.e2e, CLIENT_SOCKET_LEAK]

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
AUDIENCE = "rtplot-test"
MODES = ("asyncio", "eventlet")


def token(key: Any = KEY, algorithm: str = "RS256", **claims: Any) -> str:
    body = {"sub": "ana", "aud": AUDIENCE, "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, key, algorithm)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    pem = tmp_path_factory.mktemp("keys") / "public.pem"
    pem.write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    gateways = [(f"gateway-{mode}", "gateway", "--mode", mode) for mode in MODES]
    with running(*gateways, symbols="AAPL", jwt_key=str(pem), jwt_audience=AUDIENCE) as pipeline:
        yield pipeline


def connect(url: str, auth: Any = None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], auth=auth, wait_timeout=10)
    return client


def _hs256_with_the_public_key(pem: bytes) -> str:
    """What an attacker holding the public key would try: an HMAC keyed with it."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    claims = {"sub": "x", "aud": AUDIENCE, "exp": int(time.time()) + 300}
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    return (
        head + b"." + body + b"." + b64(hmac.new(pem, head + b"." + body, hashlib.sha256).digest())
    ).decode()


REFUSED = {
    "forged signature": token(OTHER_KEY),
    "wrong key type (HS256)": token("s" * 40, "HS256"),
    "alg none": jwt.encode({"aud": AUDIENCE, "exp": int(time.time()) + 300}, None, "none"),
    "expired": token(exp=int(time.time()) - 5),
    "not yet valid": token(nbf=int(time.time()) + 300),
    "wrong audience": token(aud="another-app"),
    "garbage": "not.a.token",
}


@pytest.mark.parametrize("mode", MODES)
def test_bad_tokens_and_no_token_are_refused_at_connect(stack: Pipeline, mode: str) -> None:
    url = stack.url(f"gateway-{mode}")
    for what, bad in [*REFUSED.items(), ("no token", None)]:
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(url, auth=None if bad is None else {"token": bad})
            pytest.fail(f"{what}: admitted")
    pem = Path(stack.services[f"gateway-{mode}"].env["RTPLOT_JWT_KEY"]).read_bytes()
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(url, auth={"token": _hs256_with_the_public_key(pem)})
    good = connect(f"{url}?token={token()}")  # the page's way: in the query string
    assert good.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
    good.disconnect()
    record_reliability(
        "bad_input",
        {
            "input": "a JWT forged, of the wrong key type, alg none, expired, not yet valid, "
            "for another audience, garbage, or none at all (RTPLOT_JWT_KEY set)",
            "response": 'connection refused: "authentication failed"',
            "mode": mode,
        },
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_tokens_symbols_claim_limits_what_it_may_watch(stack: Pipeline, mode: str) -> None:
    client = connect(stack.url(f"gateway-{mode}"), auth={"token": token(symbols=["aapl"])})
    try:
        assert client.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
        assert client.call("subscribe", {"symbol": "MSFT"}, timeout=5) == {
            "ok": False,
            "error": "your token does not allow MSFT",
        }
        assert client.call("ping_graph", {"symbol": "TSLA"}, timeout=5)["ok"] is False
    finally:
        client.disconnect()


@pytest.mark.parametrize("mode", MODES)
def test_a_session_ends_when_its_token_expires(stack: Pipeline, mode: str) -> None:
    expires = int(time.time()) + 3
    client = connect(stack.url(f"gateway-{mode}"), auth={"token": token(exp=expires)})
    gone = threading.Event()
    client.on("disconnect", lambda *args: gone.set())
    assert client.call("subscribe", {"symbol": "AAPL"}, timeout=5)["ok"]
    assert gone.wait(15), "still connected after the token expired"
    late = time.time() - expires
    assert late < 5, f"disconnected {late:.1f} s after exp"
    record_reliability(
        "faults",
        {
            "fault": f"a client's token expires while it is connected ({mode})",
            "outcome": "the gateway closed the session; the client renews by reconnecting "
            "with a new token",
            "recovery_s": round(late, 1),
            "lost": "nothing",
        },
    )


def test_no_token_shows_in_logs_metrics_or_health(stack: Pipeline) -> None:
    secret = token()
    for mode in MODES:
        url = stack.url(f"gateway-{mode}")
        connect(f"{url}?token={secret}").disconnect()
        for path in ("/metrics", "/healthz"):
            with urllib.request.urlopen(url + path, timeout=5) as reply:
                assert secret.encode() not in reply.read()
    time.sleep(0.5)
    signature = secret.rsplit(".", 1)[1]
    for service in stack.services.values():
        assert signature not in service.log(), f"{service.name} logged a token"
