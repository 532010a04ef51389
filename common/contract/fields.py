"""The fields of each Redis hash and stream entry (``Keys`` says which key holds which).

Python code uses these members; a Lua script gets each set as a table of the same names
(``common.contract.lua``: ``META.as_of``), so no field is spelled twice.
"""

from enum import StrEnum


class MetaField(StrEnum):
    """A symbol's meta hash: the fetcher writes it, the renderer reads it."""

    VERSION = "version"  # bumped on every change of the bars or of the market
    EPOCH = "epoch"  # the stream the versions count in: a new one restarts them
    AS_OF = "as_of"  # the poll's tick time of its last write: an older poll is refused
    STREAM_AS_OF = "stream_as_of"  # the newest trade the live stream wrote (its clock)
    CHANGED_AT = "changed_at"  # the tick's time of the last write that changed a bar
    STORED_AT = "stored_at"  # Redis' TIME as "s.µs" when the version was stored
    MARKET = "market"  # where the symbol trades: common.markets.Market.encode
    HISTORY = "history_version"  # bumped on every change of its history (Keys.history)


class SnapshotField(StrEnum):
    """A view's snapshot hash: the renderer writes it; gateways read the figure and its
    catch-up, renderers the rest (common.contract.snapshots)."""

    EPOCH = "epoch"  # the meta's epoch this render belongs to
    HEAD = "head"  # the newest render's seq: a render not above it is refused
    HEAD_STYLE = "head_style"  # its look (JSON): the base of the next delta
    SEQ = "seq"  # the seq of the whole figure stored
    PAYLOAD = "payload"  # that figure's `figure` event payload (packets.figure_payload)
    STYLE = "style"  # its look (JSON)
    STORED_AT = "stored_at"  # when it was stored (epoch s): stored again after a while
    CATCHUP = "catchup"  # the `bars` event from seq to head; absent when they are equal
    CATCHUP_FROM = "catchup_from"  # the first minute any render since seq changed


class ChangeField(StrEnum):
    """An entry of the changes stream (members.ChangeNotice)."""

    SYMBOL = "symbol"
    VERSION = "version"  # the fetcher's notices: the version its write made
    VIEW = "view"  # a gateway's notices: the view it wants rendered now


class BackoffField(StrEnum):
    """The source's back-off hash: the worker writes and reads it."""

    UNTIL = "until"  # epoch s (on the tick's clock) the source is left alone until
    KIND = "kind"  # the failure's kind (sources.base.SourceError.kind), for the log
