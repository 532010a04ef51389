"""Per-user tokens: what a JWT policy admits and refuses, without a server."""

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from common.settings import Settings, SettingsError
from gateway.auth import Admission, Grant, JwtPolicy, Refused, load_key
from gateway.core import GatewayCore
from gateway.runner import drive
from gateway.sessions import Sessions

SECRET = "s" * 40
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key: Any, path: Path) -> str:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "ana", "exp": int(time.time()) + 60, **extra}


def test_a_good_hs256_token_is_granted_its_symbols() -> None:
    policy = JwtPolicy(SECRET)
    grant = policy.grant(jwt.encode(claims(symbols=["aapl", "BRK-B"]), SECRET, "HS256"))
    assert grant.symbols == frozenset({"AAPL", "BRK-B"})
    assert grant.allows("AAPL") and not grant.allows("MSFT")
    assert policy.grant(jwt.encode(claims(), SECRET, "HS256")).symbols is None  # any


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(), "x" * 40, "HS256"),  # forged: another secret
        jwt.encode(claims(exp=int(time.time()) - 1), SECRET, "HS256"),  # expired
        jwt.encode(claims(nbf=int(time.time()) + 60), SECRET, "HS256"),  # not yet valid
        jwt.encode({"sub": "ana"}, SECRET, "HS256"),  # no exp at all
        jwt.encode(claims(), None, "none"),  # alg: none
        jwt.encode(claims(), RSA_KEY, "RS256"),  # the wrong kind of key
        jwt.encode(claims(symbols="AAPL"), SECRET, "HS256"),  # symbols not a list
        jwt.encode(claims(symbols=["not a symbol"]), SECRET, "HS256"),
        "garbage",
        "",
        None,
    ],
    ids=[
        "forged", "expired", "not-yet-valid", "no-exp", "alg-none", "wrong-key-type",
        "symbols-not-a-list", "bad-symbol", "garbage", "empty", "none",
    ],
)  # fmt: skip
def test_bad_tokens_are_refused(token: str | None) -> None:
    with pytest.raises(Refused):
        JwtPolicy(SECRET).grant(token)


def test_audience_and_issuer_are_checked_when_configured() -> None:
    policy = JwtPolicy(SECRET, audience="rtplot", issuer="https://id.example.com")
    good = claims(aud="rtplot", iss="https://id.example.com")
    assert policy.grant(jwt.encode(good, SECRET, "HS256"))
    for bad in (claims(aud="other", iss=good["iss"]), claims(aud="rtplot", iss="x"), claims()):
        with pytest.raises(Refused):
            policy.grant(jwt.encode(bad, SECRET, "HS256"))


def test_a_public_key_fixes_the_algorithm(tmp_path: Path) -> None:
    rsa_path = pem(RSA_KEY, tmp_path / "rsa.pem")
    policy = JwtPolicy(rsa_path)
    assert policy.grant(jwt.encode(claims(), RSA_KEY, "RS256"))
    public_pem = Path(rsa_path).read_bytes()
    # HS/RS confusion: an HMAC "signed" with the public key must not pass.
    for token in (
        jwt.encode(claims(), OTHER_RSA_KEY, "RS256"),
        jwt.encode(claims(), RSA_KEY, "PS256"),
        _hs256_with(public_pem),
        jwt.encode(claims(), None, "none"),
    ):
        with pytest.raises(Refused):
            policy.grant(token)
    ec_policy = JwtPolicy(pem(EC_KEY, tmp_path / "ec.pem"))
    assert ec_policy.grant(jwt.encode(claims(), EC_KEY, "ES256"))


def _hs256_with(secret: bytes) -> str:
    """An HS256 token keyed with these bytes, as an attacker holding the public key
    would make one (PyJWT itself refuses to sign with a PEM)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = b64(hmac.new(secret, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + signature).decode()


def test_a_bad_key_is_said_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        load_key("short")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_key(str(tmp_path / "junk.pem"))
    with pytest.raises(ValueError, match="the path of the PEM file"):
        load_key("-----BEGIN PUBLIC KEY-----\n...")
    with pytest.raises(SettingsError, match="RTPLOT_JWT_KEY") as error:
        Admission(Settings(jwt_key="short"))
    assert "short" not in str(error.value)  # a secret is never repeated


def test_each_session_holds_its_grant_and_ends_at_exp() -> None:
    admission, sessions = Admission(Settings(jwt_key=SECRET)), Sessions()
    soon = int(time.time()) + 5
    token = jwt.encode(claims(exp=soon, symbols=["AAPL"]), SECRET, "HS256")
    query = {"QUERY_STRING": f"EIO=4&token={jwt.encode(claims(), SECRET)}"}
    for sid, environ, auth in (("a", {}, {"token": token}), ("b", query, None)):
        grant = admission.grant(environ, auth)
        assert grant is not None
        sessions.open(sid, grant)
    assert admission.grant({}, {"token": "garbage"}) is None
    assert not sessions.allows("a", "MSFT") and sessions.allows("a", "AAPL")
    assert sessions.allows("b", "MSFT")
    assert sessions.ended(soon - 1) == []
    assert sessions.ended(soon) == ["a"]
    assert sessions.ended(soon + 30) == []  # each session ends once (b: in a minute)
    sessions.close("a")
    assert sessions.grants.keys() == {"b"} and len(sessions) == 1


def test_a_token_the_grant_does_not_cover_is_refused_a_subscription() -> None:
    core = GatewayCore(Settings(jwt_key=SECRET, symbols=("AAPL",)))
    token = jwt.encode(claims(symbols=["AAPL"]), SECRET, "HS256")
    assert core.connect("a", "eio-a", {}, {"token": token})
    ack = drive(core.subscribe("a", {"symbol": "MSFT"}), lambda step: None)
    assert ack == {"ok": False, "error": "your token does not allow MSFT"}


def test_the_shared_token_still_works() -> None:
    admission = Admission(Settings(auth_token="t0ken"))
    assert admission.grant({}, {"token": "t0ken"}) == Grant()
    assert admission.grant({}, {"token": "x"}) is None


def test_secrets_are_never_in_a_settings_error() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"RTPLOT_REDIS_URL": "http://user:hunter2@redis:6379/0"})
    assert "hunter2" not in str(error.value) and "***" in str(error.value)
