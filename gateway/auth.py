"""Who may connect, for how long, and to which symbols.

Two ways, chosen by the settings:

- ``RTPLOT_JWT_KEY``: a JWT per user. The key is an HS256 secret, or the path of a PEM
  public key (RSA: RS256, EC: ES256). The key's type alone fixes the algorithm; the
  token's own ``alg`` header is never trusted, so neither ``alg: none`` nor a token
  signed with an HMAC of the public key gets in. ``exp`` is required; ``nbf`` is checked
  when present, ``aud`` and ``iss`` when configured (``RTPLOT_JWT_AUDIENCE``,
  ``RTPLOT_JWT_ISSUER``). A ``symbols`` claim, a list, limits what the connection may
  subscribe to. The session ends at ``exp``: the client reconnects with a new token.
- ``RTPLOT_AUTH_TOKEN``: one shared token, no expiry, any symbol.

Either way the token comes in Socket.IO's ``auth: {token}`` or as ``?token=``.
"""

import hmac
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from common.settings import Settings, SettingsError
from common.symbols import InvalidSymbol, normalize_symbol
from gateway import metrics

log = logging.getLogger("rtplot.gateway")

MIN_SECRET = 32  # characters of an HS256 secret: a shorter one can be guessed offline


class Refused(Exception):
    """A connection refused; the message says why (for the log, never the token)."""


@dataclass(frozen=True)
class Grant:
    """What an admitted connection may do."""

    expires: float = math.inf  # epoch seconds its session ends
    symbols: frozenset[str] | None = None  # None: any symbol

    def allows(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols


def offered_token(auth: Any, query_string: str) -> str | None:
    token = auth.get("token") if isinstance(auth, dict) else None
    if token is None:
        token = parse_qs(query_string).get("token", [None])[0]
    return token if isinstance(token, str) else None


def token_matches(expected: str | None, auth: Any, query_string: str) -> bool:
    """The shared token: no token configured admits everyone; otherwise the one offered
    must match exactly."""
    if not expected:
        return True
    offered = offered_token(auth, query_string)
    return offered is not None and hmac.compare_digest(offered.encode(), expected.encode())


class Admission:
    """Who may connect: the settings' JWT key or shared token, decided once per
    connection."""

    def __init__(self, settings: Settings) -> None:
        self.shared_token = settings.auth_token
        self.jwt = _jwt_policy(settings)

    def grant(self, environ: dict[str, Any], auth: Any) -> Grant | None:
        """What a new connection may do; None (counted and logged) if refused."""
        query = environ.get("QUERY_STRING", "")
        try:
            if self.jwt is not None:
                return self.jwt.grant(offered_token(auth, query))
            if token_matches(self.shared_token, auth, query):
                return Grant()
            raise Refused("no token, or not the shared one")
        except Refused as exc:
            metrics.REFUSED.labels("connect", "auth").inc()
            log.info("connection refused", extra={"reason": str(exc)})
            return None


def _jwt_policy(settings: Settings) -> "JwtPolicy | None":
    if settings.jwt_key is None:
        return None
    try:
        return JwtPolicy(settings.jwt_key, settings.jwt_audience, settings.jwt_issuer)
    except ValueError as exc:  # said at start, not at the first client
        raise SettingsError(f"RTPLOT_JWT_KEY: {exc}") from None


class JwtPolicy:
    def __init__(self, key: str, audience: str | None = None, issuer: str | None = None) -> None:
        self.key, self.algorithm = load_key(key)
        self.audience, self.issuer = audience, issuer

    def grant(self, token: str | None) -> Grant:
        if not token:
            raise Refused("no token")
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
                leeway=0,
            )
        except jwt.InvalidTokenError as exc:
            raise Refused(f"{type(exc).__name__}: {exc}") from None
        return Grant(float(claims["exp"]), _symbols(claims.get("symbols")))


def load_key(key: str) -> tuple[Any, str]:
    """(the verification key, the one algorithm it allows). ``key`` is a PEM public key's
    path, or else an HS256 secret. Raises ValueError saying what is wrong."""
    path = Path(key).expanduser()
    if path.is_file():
        try:
            public = load_pem_public_key(path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"{path} is not a PEM public key: {exc}") from None
        if isinstance(public, rsa.RSAPublicKey):
            return public, "RS256"
        if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
            return public, "ES256"
        raise ValueError(f"{path}: only RSA (RS256) and P-256 EC (ES256) keys are supported")
    if key.lstrip().startswith("-----BEGIN"):
        raise ValueError("give the path of the PEM file, not its contents")
    if len(key) < MIN_SECRET:
        raise ValueError(f"an HS256 secret must be at least {MIN_SECRET} characters")
    return key, "HS256"


def _symbols(claim: Any) -> frozenset[str] | None:
    if claim is None:
        return None
    if not isinstance(claim, list):
        raise Refused("the symbols claim must be a list")
    try:
        return frozenset(normalize_symbol(symbol) for symbol in claim)
    except InvalidSymbol as exc:
        raise Refused(f"the symbols claim: {exc}") from None
