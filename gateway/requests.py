"""What a client asks for: the payloads of its events, validated, and the rooms they
name. A bad payload raises ``BadRequest``, whose message goes back in the ack."""

from dataclasses import dataclass
from typing import Any

from common.contract.past import DEFAULT_ROWS, MAX_ROWS
from common.contract.rooms import Mode, Room
from common.symbols import InvalidSymbol, normalize_symbol
from common.views import DEFAULT, FIELDS, InvalidView, View
from common.views import requested_view as view_fields

SUBSCRIBE_FIELDS = ("symbol", "updates", "since", *FIELDS)
HISTORY_FIELDS = ("symbol", *FIELDS, "before", "count", "after")
MAX_EPOCH_LENGTH = 64  # an epoch is a short id (common.versions); anything longer is not one
UPDATE_MODES = {"figure": Mode.FIGURE, "delta": Mode.DELTA}  # a subscribe's "updates"


class BadRequest(ValueError):
    """A request refused with this message in its ack; the connection stays usable."""


def requested_symbol(data: Any) -> str:
    """The symbol a ``subscribe``/``unsubscribe``/``snapshot``/``ping_graph`` payload
    names: ``{"symbol": "AAPL"}`` (or, leniently, the bare string ``"AAPL"``)."""
    if isinstance(data, dict):
        if "symbol" not in data:
            raise BadRequest('payload must be {"symbol": "<SYMBOL>"}')
        raw = data["symbol"]
    elif isinstance(data, str):
        raw = data
    else:
        raise BadRequest('payload must be {"symbol": "<SYMBOL>"}')
    try:
        return normalize_symbol(raw)
    except InvalidSymbol as exc:
        raise BadRequest(str(exc)) from None


def requested_updates(data: Any) -> Mode:
    """The update stream a ``subscribe`` asks for: "figure" (default) or "delta"."""
    updates = data.get("updates", "figure") if isinstance(data, dict) else "figure"
    if not isinstance(updates, str) or updates not in UPDATE_MODES:
        raise BadRequest('"updates" must be "figure" or "delta"')
    return UPDATE_MODES[updates]


@dataclass(frozen=True)
class Since:
    """What a resuming client holds: the figure of ``seq`` in ``epoch``."""

    seq: int
    epoch: str


def requested_since(data: Any) -> Since | None:
    """A ``subscribe``'s optional ``"since": {"seq": S, "epoch": E}``."""
    if not isinstance(data, dict) or data.get("since") is None:
        return None
    since = data["since"]
    seq = since.get("seq") if isinstance(since, dict) else None
    epoch = since.get("epoch") if isinstance(since, dict) else None
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 0
        or not isinstance(epoch, str)
        or not 0 < len(epoch) <= MAX_EPOCH_LENGTH
    ):
        raise BadRequest('"since" must be {"seq": <int, 0 or more>, "epoch": "<epoch>"}')
    return Since(seq, epoch)


def requested_view(data: Any, event: str = "subscribe") -> View:
    """The view a ``subscribe`` (or a ``history`` request) asks for (common.views):
    ``chart``, ``timeframe``, ``indicators``, ``volume``, each optional; any other field
    is refused, so a typo does not quietly draw the default chart."""
    if not isinstance(data, dict):
        return DEFAULT
    allowed = HISTORY_FIELDS if event == "history" else SUBSCRIBE_FIELDS
    unknown = [str(key) for key in data if key not in allowed]
    if unknown:
        fields = ", ".join(f'"{name}"' for name in allowed)
        raise BadRequest(f'unknown field "{unknown[0][:40]}": a {event} takes {fields}')
    try:
        return view_fields(data)
    except InvalidView as exc:
        raise BadRequest(str(exc)) from None


def subscription_room(symbol: str, updates: Mode, view: View) -> Room:
    """The room a subscription lives in: the view's, for its update mode."""
    return Room(symbol, updates, view.key)


@dataclass(frozen=True)
class PastRequest:
    """A ``history`` request: the view's last ``count`` bars starting before ``before``
    (and at or after ``after``), times as the rows' x (exchange clock, seconds)."""

    symbol: str
    view: View
    before: int
    count: int
    after: int | None


def requested_past(data: Any) -> PastRequest:
    """``{"symbol", <view fields>, "before": t, "count": n, "after": t}``: ``before``
    required, ``count`` 1 to MAX_ROWS (DEFAULT_ROWS if left out), ``after`` optional and
    before ``before``."""
    symbol = requested_symbol(data)
    view = requested_view(data, "history")
    before, count, after = data.get("before"), data.get("count", DEFAULT_ROWS), data.get("after")
    if not _whole(before) or before < 0:
        raise BadRequest('"before" must be a time in seconds, as a row\'s x')
    if not _whole(count) or not 1 <= count <= MAX_ROWS:
        raise BadRequest(f'"count" must be a whole number from 1 to {MAX_ROWS}')
    if after is not None and (not _whole(after) or after >= before):
        raise BadRequest('"after" must be a time in seconds before "before"')
    return PastRequest(symbol, view, before, count, after)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
