"""The gateway's limits, on an injected clock: the event rate, flood detection, the
subscriptions cap, allowed origins and the shared token."""

import pytest

from gateway.auth import token_matches
from gateway.limits import DISCONNECT_AFTER_REFUSALS, Guard, TokenBucket, origin_policy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2 a second
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # a long pause refills to the burst, no further
    assert sum(bucket.take() for _ in range(10)) == 3


def test_refusals_in_a_row_mark_a_flood_and_one_admission_clears_them() -> None:
    clock = Clock()
    guard = Guard(rate=1, burst=1, max_subscriptions=5, clock=clock)
    assert guard.admit("a")
    for _ in range(DISCONNECT_AFTER_REFUSALS - 1):
        assert not guard.admit("a")
    assert not guard.should_disconnect("a")
    assert not guard.admit("a")
    assert guard.should_disconnect("a")
    assert guard.admit("b") and not guard.should_disconnect("b")  # its own budget
    clock.now += 1
    assert guard.admit("a") and not guard.should_disconnect("a")
    guard.forget("a")
    assert "a" not in guard.buckets and "a" not in guard.refusals


def test_the_subscriptions_cap() -> None:
    guard = Guard(rate=1, burst=1, max_subscriptions=2)
    assert guard.too_many_subscriptions(1) is None
    assert guard.too_many_subscriptions(2) == "too many subscriptions on one connection (max 2)"


PAGE = {"wsgi.url_scheme": "http", "HTTP_HOST": "charts.local:8000"}
PROXIED = {
    "wsgi.url_scheme": "http",
    "HTTP_HOST": "gateway-2:8000",
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_HOST": "charts.example.com",
}


@pytest.mark.parametrize(
    ("origin", "environ", "admitted"),
    [
        ("http://charts.local:8000", PAGE, True),  # the page's own origin
        ("http://charts.local:8000/", PAGE, True),
        ("https://charts.example.com", PROXIED, True),  # its own, behind a proxy
        ("http://partner.example.org", PAGE, True),  # configured
        ("http://evil.example.net", PAGE, False),
        ("http://charts.local:9999", PAGE, False),
        (None, PAGE, True),  # not a browser: no Origin to check
    ],
)
def test_the_origin_policy(origin: str | None, environ: dict[str, str], admitted: bool) -> None:
    policy = origin_policy(("http://partner.example.org",))
    assert policy(origin, environ) is admitted


def test_a_star_admits_any_origin() -> None:
    assert origin_policy(("*",)) == "*"


@pytest.mark.parametrize(
    ("auth", "query", "admitted"),
    [
        ({"token": "s3cret"}, "", True),
        (None, "EIO=4&token=s3cret", True),
        ({"token": "wrong"}, "token=s3cret", False),  # the auth payload wins
        ({"token": 42}, "", False),
        ("s3cret", "", False),
        (None, "", False),
    ],
)
def test_the_shared_token(auth: object, query: str, admitted: bool) -> None:
    assert token_matches("s3cret", auth, query) is admitted
    assert token_matches(None, auth, query)  # no token configured: everyone
