"""The whole path, offline as every machine here is: Yahoo's chart API unreachable (the
poll fails and backs off), the stand-in streamer sending trades, and a real browser on
the page showing them live, its card marked as fed by the stream."""

import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser
from test_page import Tab

from streamer import StandInStreamer, pricing_frame
from support import Pipeline, running, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def streamer() -> Iterator[StandInStreamer]:
    with StandInStreamer() as standin:
        yield standin


@pytest.fixture(scope="module")
def stack(streamer: StandInStreamer) -> Iterator[Pipeline]:
    with running(
        "worker", "beat", "stream", "renderer", "gateway",
        ("gateway-eventlet", "gateway", "--mode", "eventlet"),
        source="yfinance", stream="yahoo", stream_url=streamer.url, symbols="AAPL,MSFT",
        fetch_interval=5,
    ) as pipeline:  # fmt: skip
        yield pipeline


class Trades(threading.Thread):
    """AAPL trading five times a second, its price rising a cent a trade."""

    def __init__(self, streamer: StandInStreamer) -> None:
        super().__init__(daemon=True)
        self.streamer, self.stopping = streamer, threading.Event()
        self.price, self.volume = 200.0, 1_000_000

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            self.price = round(self.price + 0.01, 2)
            self.volume += 100
            now_ms = int(time.time() * 1000)
            self.streamer.send([pricing_frame("AAPL", self.price, now_ms, self.volume)])


def card(tab: Tab, symbol: str) -> dict[str, str]:
    return dict(
        tab.page.evaluate(
            """symbol => {
            const card = document.querySelector(`.card[data-symbol="${symbol}"]`);
            return {price: card.querySelector('.price').textContent,
                    streamed: card.dataset.streamed || '',
                    badge: card.querySelector('.streamed').hidden ? 'hidden' : 'shown'};
        }""",
            symbol,
        )
    )


def test_the_page_shows_streamed_prices_with_the_chart_api_unreachable(
    stack: Pipeline, streamer: StandInStreamer, browser: Browser
) -> None:
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    trades = Trades(streamer)
    trades.start()
    try:
        tab = Tab(browser, stack.url("gateway") + "/?symbols=AAPL,MSFT")
        tab.wait_drawn("AAPL")
        # The card follows the trades: its price is within a few trades of the last.
        wait_until(
            lambda: abs(float(card(tab, "AAPL")["price"]) - trades.price) < 0.05,
            timeout=10,
            message="the card's price following the trades",
        )
        wait_until(lambda: card(tab, "AAPL")["streamed"] == "yes", timeout=15)
        assert card(tab, "AAPL")["badge"] == "shown"
        assert card(tab, "MSFT")["badge"] == "hidden"  # no trade of it came
        assert tab.errors == []
    finally:
        trades.stopping.set()
        trades.join()
    # The poll failed, quietly: warnings, backing off, and the worker alive.
    worker = stack.services["worker"]
    wait_until(lambda: "backing off" in worker.log(), timeout=40, message="the poll failing")
    worker.check_alive()


@pytest.mark.parametrize("gateway", ["gateway", "gateway-eventlet"])
def test_each_gateway_says_which_symbols_the_stream_feeds(
    stack: Pipeline, streamer: StandInStreamer, gateway: str
) -> None:
    wait_until(lambda: streamer.subscribed == {"AAPL", "MSFT"}, message="subscribed")
    streamer.send([pricing_frame("MSFT", 420.0, int(time.time() * 1000), 1)])

    def streaming() -> list[str]:
        url = stack.url(gateway) + "/streaming"
        with urllib.request.urlopen(url, timeout=5) as response:
            return list(json.loads(response.read())["symbols"])

    wait_until(lambda: "MSFT" in streaming(), timeout=10, message=f"MSFT on {gateway}")
