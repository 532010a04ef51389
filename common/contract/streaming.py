"""Which symbols the live stream feeds now: ``rtplot stream`` stamps each symbol it
writes in ``Keys.streaming``; gateways read the recent ones for the page, which marks
their charts as live from the stream."""

from collections.abc import Sequence

STREAMING_WITHIN = 90.0  # seconds: a symbol written this recently is streaming


def streaming_since(now: float) -> float:
    """The oldest stamp of a symbol still streaming."""
    return now - STREAMING_WITHIN


def streaming_of(raw: Sequence[bytes]) -> list[str]:
    return sorted(symbol.decode() for symbol in raw)
