"""The gateway's protocol core, driven by a script instead of a server: which steps each
request takes, in which order, and what the client hears when a step fails."""

from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from engineio import packet as eio_packet

from common.contract.resume import Outcome, Resume
from common.contract.rooms import Room
from common.contract.snapshots import Snapshot
from common.contract.watching import ViewStamp
from common.settings import Settings
from gateway import steps as do
from gateway.core import GatewayCore
from gateway.limits import DISCONNECT_AFTER_REFUSALS
from gateway.membership import Membership
from gateway.runner import drive
from gateway.steps import StepFailed, Steps, ask

SNAPSHOT = b'{"symbol":"AAPL","seq":7,"figure":{"data":[{"y":[1.5]}],"layout":{}}}'
R = Room.parse
UNAVAILABLE = {"ok": False, "error": "temporarily unavailable, try again"}


class Script:
    """Performs steps as a server would, on the core's own membership, with canned Redis
    answers; ``during`` runs when a given kind of step is performed (an update arriving,
    say)."""

    def __init__(
        self,
        membership: Membership,
        snapshot: bytes | None = SNAPSHOT,
        watched: bool = True,
        catchup: bytes | None = None,
        resume: Resume | None = None,
        view_stamp: ViewStamp = ViewStamp.WATCHED,
    ) -> None:
        self.membership = membership
        self.resume, self.view_stamp = resume, view_stamp
        self.snapshot, self.watched, self.catchup = snapshot, watched, catchup
        self.steps: list[do.Step[Any]] = []
        self.sent: list[str] = []  # what the client is sent, as the driver encodes it
        self.during: dict[type, Callable[[], Any]] = {}

    def perform(self, step: do.Step[Any]) -> Any:
        self.steps.append(step)
        if (hook := self.during.get(type(step))) is not None:
            hook()
        match step:
            case do.Watch():
                return self.watched
            case do.WatchView():
                return self.view_stamp
            case do.ReadSnapshot():
                return Snapshot(self.snapshot, self.catchup)
            case do.ReadResume():
                return self.resume
            case do.Send(_, packets):
                message = eio_packet.MESSAGE
                self.sent += [eio_packet.Packet(message, p.decode()).encode() for p in packets]
            case do.DropSlowConsumers():
                return [150]
        return None

    def kinds(self) -> list[str]:
        return [type(step).__name__ for step in self.steps]

    def update(self, room: Room, payload: str) -> Callable[[], Any]:
        """A hook publishing an update to ``room`` the moment it runs."""
        return lambda: self.membership.recipients(room, [payload.encode()])


@pytest.fixture
def core() -> GatewayCore:
    core = GatewayCore(Settings(symbols=("AAPL",), rate_burst=1000, rate_limit=1000))
    assert core.connect("c1", "eio-c1", {}, None)
    return core


def run(steps: Steps[Any], script: Script) -> Any:
    return drive(steps, script.perform)


def test_a_subscription_reads_the_snapshot_only_once_its_room_is_heard(
    core: GatewayCore,
) -> None:
    script = Script(core.membership)
    held: list[set[Room]] = []  # the rooms holding the client's updates as it listens
    script.during[do.Listen] = lambda: held.append(set(core.membership.held))
    ack = run(core.subscribe("c1", {"symbol": "aapl"}), script)
    assert ack == {"ok": True, "symbol": "AAPL"}
    # AAPL is configured: always tracked, no stamp.
    assert script.kinds() == ["Listen", "ReadSnapshot", "Send"]
    assert held == [{R("figure:AAPL")}]
    assert script.sent == ['42["figure",' + SNAPSHOT.decode() + "]"]
    assert core.membership.members == {R("figure:AAPL"): {"c1": "eio-c1"}}
    assert core.membership.holds("c1", "AAPL")


def test_updates_published_while_joining_follow_the_snapshot_in_order(
    core: GatewayCore,
) -> None:
    script = Script(core.membership)
    script.during[do.ReadSnapshot] = script.update(R("bars:AAPL"), '2["bars",{"seq":8}]')
    later = script.update(R("bars:AAPL"), '2["bars",{"seq":9}]')
    script.during[do.Send] = lambda: (later(), script.during.pop(do.Send))  # once
    run(core.subscribe("c1", {"symbol": "AAPL", "updates": "delta"}), script)
    assert script.sent[1:] == ['42["bars",{"seq":8}]', '42["bars",{"seq":9}]']
    assert script.kinds() == ["Listen", "ReadSnapshot", "Send", "Send"]  # snapshot, then held
    assert core.membership.held == {}
    assert core.membership.members == {R("bars:AAPL"): {"c1": "eio-c1"}}


def test_a_page_gets_the_stored_figure_then_the_deltas_since_it(core: GatewayCore) -> None:
    catchup = b'{"symbol":"AAPL","seq":9,"base_seq":7,"bars":[]}'
    page, viewer = (
        Script(core.membership, catchup=catchup),
        Script(core.membership, catchup=catchup),
    )
    run(core.subscribe("c1", {"symbol": "AAPL", "updates": "delta"}), page)
    assert page.sent == [f'42["figure",{SNAPSHOT.decode()}]', f'42["bars",{catchup.decode()}]']
    assert core.connect("c2", "eio-c2", {}, None)
    run(core.subscribe("c2", {"symbol": "AAPL"}), viewer)  # figure mode: no deltas
    assert viewer.sent == [f'42["figure",{SNAPSHOT.decode()}]']
    page.sent.clear()
    run(core.snapshot("c1", {"symbol": "AAPL"}), page)  # a gap: the same again
    assert page.sent == [f'42["figure",{SNAPSHOT.decode()}]', f'42["bars",{catchup.decode()}]']


def test_a_redis_failure_refuses_the_subscription_and_drops_its_hold(
    core: GatewayCore,
) -> None:
    script = Script(core.membership)

    def fail() -> None:
        raise redis.ConnectionError("gone")

    script.during[do.ReadSnapshot] = fail
    assert run(core.subscribe("c1", {"symbol": "AAPL"}), script) == UNAVAILABLE
    assert script.kinds() == ["Listen", "ReadSnapshot"]
    assert core.membership.held == {} and core.membership.members == {}
    assert not core.membership.holds("c1", "AAPL")


def test_a_room_not_confirmed_in_time_is_refused_the_same_way(core: GatewayCore) -> None:
    script = Script(core.membership)

    def late() -> None:
        raise TimeoutError("no subscription")

    script.during[do.Listen] = late
    assert run(core.subscribe("c1", {"symbol": "AAPL"}), script) == UNAVAILABLE
    assert "ReadSnapshot" not in script.kinds()


def test_a_symbol_over_the_cap_is_refused(core: GatewayCore) -> None:
    script = Script(core.membership, watched=False)
    ack = run(core.subscribe("c1", {"symbol": "NVDA"}), script)
    assert ack["ok"] is False and "RTPLOT_MAX_SYMBOLS" in ack["error"]
    assert script.kinds() == ["Watch"]
    assert core.membership.held == {} and core.membership.rooms() == set()  # hold released


def test_a_failed_resubscription_keeps_the_earlier_one_and_its_updates(
    core: GatewayCore,
) -> None:
    script = Script(core.membership)
    run(core.subscribe("c1", {"symbol": "AAPL"}), script)
    script.sent.clear()

    def fail() -> None:
        script.update(R("figure:AAPL"), '2["figure",{"seq":8}]')()
        raise redis.ConnectionError("gone")

    script.during[do.ReadSnapshot] = fail
    assert run(core.subscribe("c1", {"symbol": "AAPL"}), script) == UNAVAILABLE
    assert script.sent == ['42["figure",{"seq":8}]']  # held, then released to it
    assert core.membership.members == {R("figure:AAPL"): {"c1": "eio-c1"}}


def test_unsubscribing_while_a_join_waits_wins(core: GatewayCore) -> None:
    script = Script(core.membership)
    # The client's unsubscribe is handled while its subscribe waits for the snapshot.
    script.during[do.ReadSnapshot] = lambda: run(core.unsubscribe("c1", {"symbol": "AAPL"}), script)
    assert run(core.subscribe("c1", {"symbol": "AAPL"}), script)["ok"]
    assert core.membership.members == {} and core.membership.held == {}
    assert core.membership.rooms() == set() and script.sent == []
    assert not core.membership.holds("c1", "AAPL")


def test_switching_update_mode_leaves_the_other_rooms(core: GatewayCore) -> None:
    script = Script(core.membership)
    run(core.subscribe("c1", {"symbol": "AAPL"}), script)
    run(core.subscribe("c1", {"symbol": "AAPL", "updates": "delta"}), script)
    assert core.membership.members == {R("bars:AAPL"): {"c1": "eio-c1"}}
    assert core.membership.room_of("c1", "AAPL") == R("bars:AAPL")
    assert core.membership.counts() == {"AAPL": 1}


def test_the_articles_client_gets_the_figure_as_a_json_string(core: GatewayCore) -> None:
    script = Script(core.membership)
    assert run(core.ping_graph("c1", {"symbol": "aapl"}), script)["ok"]
    event, payload = orjson.loads(script.sent[0][2:])  # 42[...]
    assert event == "graph_plot"
    assert orjson.loads(payload) == orjson.loads(SNAPSHOT)["figure"]
    assert core.membership.room_of("c1", "AAPL") == R("graph_plot:AAPL")


@pytest.mark.parametrize("payload", [None, 3, {"symbol": "A B"}, {"symbol": "AAPL", "updates": 1}])
def test_a_bad_request_is_refused_without_any_io(core: GatewayCore, payload: Any) -> None:
    script = Script(core.membership)
    ack = run(core.subscribe("c1", payload), script)
    assert ack["ok"] is False and ack["error"]
    assert script.steps == []


def test_a_snapshot_request_sends_the_stored_figure(core: GatewayCore) -> None:
    script = Script(core.membership)
    assert run(core.snapshot("c1", {"symbol": "AAPL"}), script) == {"ok": True, "symbol": "AAPL"}
    assert script.kinds() == ["ReadSnapshot", "Send"]
    none_yet = Script(core.membership, snapshot=None)
    ack = run(core.snapshot("c1", {"symbol": "ZZZ"}), none_yet)
    assert ack == {"ok": False, "error": "no snapshot of ZZZ yet"}


def test_a_flooding_client_is_disconnected() -> None:
    core = GatewayCore(Settings(rate_limit=0.001, rate_burst=1))
    core.connect("c1", "eio-c1", {}, None)
    script = Script(core.membership)
    assert run(core.unknown("nonsense", "c1"), script)["error"] == "unknown event"
    for _ in range(DISCONNECT_AFTER_REFUSALS - 1):
        assert run(core.unknown("nonsense", "c1"), script)["error"] == "rate limited: slow down"
    assert script.steps == []  # refused, not yet disconnected
    run(core.unknown("nonsense", "c1"), script)
    assert script.steps == [do.Disconnect("c1")]


def test_a_disconnect_forgets_the_client_everywhere(core: GatewayCore) -> None:
    script = Script(core.membership)
    run(core.subscribe("c1", {"symbol": "AAPL"}), script)
    run(core.disconnect("c1"), script)
    assert core.membership.members == {} and core.sessions.grants == {}
    assert core.membership.counts() == {} and core.membership.eio_sids == {}


def test_watched_symbols_are_stamped_again_until_redis_fails(core: GatewayCore) -> None:
    script = Script(core.membership)
    for sid, symbol in (("c1", "NVDA"), ("c1", "TSLA")):
        run(core.subscribe(sid, {"symbol": symbol}), script)
    script.steps.clear()
    loop = core.refresh_watched()
    assert isinstance(next(loop), do.Sleep)
    assert [loop.send(None), loop.send(True)] == [do.Watch("NVDA"), do.Watch("TSLA")]
    assert isinstance(loop.send(True), do.Sleep)
    assert loop.send(None) == do.Watch("NVDA")
    assert isinstance(loop.throw(StepFailed("gone")), do.Sleep)  # the round ends


def test_slow_consumers_are_looked_for_twice_a_second(core: GatewayCore) -> None:
    loop = core.drop_slow_consumers()
    assert next(loop) == do.Sleep(0.5)
    assert loop.send(None) == do.DropSlowConsumers(core.settings.max_queued)
    assert loop.send([150, 120]) == do.Sleep(0.5)


def test_an_io_error_reaches_the_core_as_step_failed_and_nothing_else_does() -> None:
    def steps() -> Steps[str]:
        try:
            watched = yield from ask(do.Watch("X"))
        except StepFailed as exc:
            return f"caught {exc}"
        return f"not thrown: {watched}"

    def lost(step: do.Step[Any]) -> Any:
        raise redis.ConnectionError("gone")

    assert drive(steps(), lost) == "caught ConnectionError: gone"
    assert drive(steps(), lambda step: True) == "not thrown: True"

    def broken(step: do.Step[Any]) -> Any:
        raise KeyError("a bug, not I/O")

    with pytest.raises(KeyError):
        drive(steps(), broken)  # a driver's bug is not the core's to handle


# -- views ---------------------------------------------------------------------------

CANDLES = R("figure:AAPL@candles.5m.vol")


def test_a_view_is_its_own_room_stamped_as_watched_once_it_is_heard(core: GatewayCore) -> None:
    script = Script(core.membership)
    ack = run(
        core.subscribe("c1", {"symbol": "AAPL", "chart": "candles", "timeframe": "5m"}), script
    )
    assert ack == {"ok": True, "symbol": "AAPL"}
    assert script.kinds() == ["Listen", "WatchView", "ReadSnapshot", "Send"]
    assert do.Listen(CANDLES) in script.steps
    assert do.WatchView("AAPL", "candles.5m.vol") in script.steps
    assert do.ReadSnapshot("AAPL", "candles.5m.vol") in script.steps
    assert core.membership.members == {CANDLES: {"c1": "eio-c1"}}
    assert core.membership.views() == [("AAPL", "candles.5m.vol")]


def test_the_default_view_asks_no_stamp_and_keeps_its_rooms(core: GatewayCore) -> None:
    script = Script(core.membership)
    view = {"chart": "mountain", "timeframe": "1m", "indicators": [], "volume": False}
    run(core.subscribe("c1", {"symbol": "AAPL", "updates": "delta", **view}), script)
    assert "WatchView" not in script.kinds() and do.ReadSnapshot("AAPL", "") in script.steps
    assert core.membership.members == {R("bars:AAPL"): {"c1": "eio-c1"}}


def test_switching_views_leaves_the_old_views_room(core: GatewayCore) -> None:
    script = Script(core.membership)
    run(core.subscribe("c1", {"symbol": "AAPL", "chart": "candles", "timeframe": "5m"}), script)
    run(core.subscribe("c1", {"symbol": "AAPL", "chart": "ohlc", "updates": "delta"}), script)
    assert core.membership.members == {R("bars:AAPL@ohlc.1m.vol"): {"c1": "eio-c1"}}
    assert core.membership.views() == [("AAPL", "ohlc.1m.vol")]
    run(core.subscribe("c1", {"symbol": "AAPL"}), script)  # back to the article's chart
    assert core.membership.members == {R("figure:AAPL"): {"c1": "eio-c1"}}
    assert core.membership.views() == []


def test_of_two_overlapping_subscribes_the_later_wins(core: GatewayCore) -> None:
    script = Script(core.membership)
    later = core.subscribe("c1", {"symbol": "AAPL", "chart": "ohlc"})
    # The first one's snapshot read is slow: the page switched view meanwhile.
    script.during[do.ReadSnapshot] = lambda: (
        script.during.pop(do.ReadSnapshot),
        run(later, script),
    )
    assert run(core.subscribe("c1", {"symbol": "AAPL", "chart": "candles"}), script)["ok"]
    assert core.membership.members == {R("figure:AAPL@ohlc.1m.vol"): {"c1": "eio-c1"}}
    assert core.membership.held == {}
    assert core.membership.room_of("c1", "AAPL") == R("figure:AAPL@ohlc.1m.vol")


def test_unsubscribing_leaves_a_views_room_even_while_it_is_joined(core: GatewayCore) -> None:
    script = Script(core.membership)
    unsubscribe = core.unsubscribe("c1", {"symbol": "AAPL"})
    script.during[do.ReadSnapshot] = lambda: run(unsubscribe, script)
    assert run(core.subscribe("c1", {"symbol": "AAPL", "chart": "candles"}), script)["ok"]
    assert core.membership.members == {} and core.membership.held == {}
    run(core.subscribe("c1", {"symbol": "AAPL", "chart": "candles"}), script)
    run(core.unsubscribe("c1", {"symbol": "AAPL"}), script)
    assert core.membership.members == {} and core.membership.views() == []


def test_a_snapshot_request_reads_the_snapshot_of_the_view_held(core: GatewayCore) -> None:
    script = Script(core.membership)
    run(core.subscribe("c1", {"symbol": "AAPL", "chart": "candles", "updates": "delta"}), script)
    script.steps.clear()
    run(core.snapshot("c1", {"symbol": "AAPL"}), script)
    assert script.steps[0] == do.ReadSnapshot("AAPL", "candles.1m.vol")


@pytest.mark.parametrize(
    "payload",
    [
        {"symbol": "AAPL", "chart": "bars"},
        {"symbol": "AAPL", "timeframe": "7m"},
        {"symbol": "AAPL", "indicators": ["rsi"]},
        {"symbol": "AAPL", "volume": 1},
        {"symbol": "AAPL", "timeFrame": "5m"},
    ],
)
def test_a_bad_view_is_refused_with_the_reason_and_without_any_io(
    core: GatewayCore, payload: dict[str, Any]
) -> None:
    script = Script(core.membership)
    ack = run(core.subscribe("c1", payload), script)
    assert ack["ok"] is False and ('"' in ack["error"]) and script.steps == []


def test_views_held_are_stamped_again_without_asking_for_a_render(core: GatewayCore) -> None:
    script = Script(core.membership)
    run(core.subscribe("c1", {"symbol": "NVDA", "chart": "candles", "timeframe": "1h"}), script)
    loop = core.refresh_watched()
    assert isinstance(next(loop), do.Sleep)
    assert loop.send(None) == do.Watch("NVDA")
    assert loop.send(True) == do.WatchView("NVDA", "candles.1h.vol", notify=False)
    assert isinstance(loop.send(None), do.Sleep)


def test_a_join_finishing_while_a_later_one_waits_gives_way(core: GatewayCore) -> None:
    """The page switched from candles to ohlc; the candles join ends first, while the
    ohlc one still waits for its snapshot: the client ends up in the ohlc room only."""
    script = Script(core.membership)
    later = core.subscribe("c1", {"symbol": "AAPL", "chart": "ohlc"})
    paused: list[do.Step] = []

    def start_later() -> None:  # run the later join up to its snapshot read, and pause
        script.during.pop(do.ReadSnapshot)
        step = next(later)
        while not isinstance(step, do.ReadSnapshot):
            step = later.send(script.perform(step))
        paused.append(step)

    script.during[do.ReadSnapshot] = start_later
    assert run(core.subscribe("c1", {"symbol": "AAPL", "chart": "candles"}), script)["ok"]
    assert core.membership.members == {}  # the earlier join gave way
    assert list(core.membership.held) == [R("figure:AAPL@ohlc.1m.vol")]
    result = script.perform(paused[0])
    with pytest.raises(StopIteration) as done:
        while True:
            result = script.perform(later.send(result))
    assert done.value.value == {"ok": True, "symbol": "AAPL"}
    assert core.membership.members == {R("figure:AAPL@ohlc.1m.vol"): {"c1": "eio-c1"}}


RESUMED = b'{"symbol":"AAPL","seq":12,"base_seq":7,"bars":[]}'
SINCE = {"symbol": "AAPL", "updates": "delta", "since": {"seq": 7, "epoch": "e1"}}


def test_a_page_that_says_what_it_holds_resumes_with_one_bars_event(core: GatewayCore) -> None:
    script = Script(core.membership, resume=Resume(Outcome.RESUMED, 12, RESUMED))
    ack = run(core.subscribe("c1", SINCE), script)
    assert ack == {"ok": True, "symbol": "AAPL", "resumed": True}
    assert script.kinds() == ["Listen", "ReadResume", "Send"]  # no snapshot read
    assert script.steps[1] == do.ReadResume("AAPL", "", "e1", 7)
    assert script.sent == [f'42["bars",{RESUMED.decode()}]']


def test_a_page_holding_the_newest_render_is_sent_nothing(core: GatewayCore) -> None:
    script = Script(core.membership, resume=Resume(Outcome.CURRENT, 7))
    ack = run(core.subscribe("c1", SINCE), script)
    assert ack == {"ok": True, "symbol": "AAPL", "resumed": True}
    assert script.sent == []


@pytest.mark.parametrize("outcome", [Outcome.TOO_OLD, Outcome.OTHER_EPOCH])
def test_a_page_the_log_cannot_carry_gets_the_snapshot(core: GatewayCore, outcome: Outcome) -> None:
    script = Script(core.membership, resume=Resume(outcome))
    ack = run(core.subscribe("c1", SINCE), script)
    assert ack == {"ok": True, "symbol": "AAPL", "resumed": False}
    assert script.kinds() == ["Listen", "ReadResume", "ReadSnapshot", "Send"]
    assert script.sent == [f'42["figure",{SNAPSHOT.decode()}]']


def test_a_figure_client_gets_the_figure_whatever_it_holds(core: GatewayCore) -> None:
    script = Script(core.membership, resume=Resume(Outcome.RESUMED, 12, RESUMED))
    ack = run(core.subscribe("c1", {**SINCE, "updates": "figure"}), script)
    assert ack == {"ok": True, "symbol": "AAPL", "resumed": False}
    assert script.kinds() == ["Listen", "ReadSnapshot", "Send"]


def test_a_view_over_a_cap_is_refused_and_the_client_keeps_what_it_held(
    core: GatewayCore,
) -> None:
    run(core.subscribe("c1", {"symbol": "AAPL", "updates": "delta"}), Script(core.membership))
    over = Script(core.membership, view_stamp=ViewStamp.OVER_SYMBOL_CAP)
    request = {"symbol": "AAPL", "updates": "delta", "chart": "candles", "timeframe": "15m"}
    ack = run(core.subscribe("c1", request), over)
    assert ack["ok"] is False and "RTPLOT_MAX_VIEWS_PER_SYMBOL" in ack["error"]
    assert over.kinds() == ["Listen", "WatchView"] and over.sent == []
    assert core.membership.members == {R("bars:AAPL"): {"c1": "eio-c1"}}
    assert core.membership.held == {}
