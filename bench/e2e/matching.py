"""The clients' receipts, and each matched to the writes it carries."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from bench.e2e.market import Write
from bench.e2e.writer import Published
from bench.loadgen import received_prefix
from common.messages import BARS, FIGURE

Receipt = tuple[str, int, int, float]  # (symbol, base_seq, seq, time.time() at receipt)


class Receipts:
    """Records each ``bars`` event's symbol and seqs with its receipt time. Deltas are a
    few hundred bytes, so parsing them costs little; the snapshot ``figure`` sent on
    subscribe (15 KB) is only counted, never parsed."""

    BARS_PREFIX = received_prefix(BARS)
    FIGURE_PREFIX = received_prefix(FIGURE)

    def __init__(self) -> None:
        self.deltas: list[Receipt] = []
        self.figures = 0
        self.per_seq: Counter[tuple[str, int]] = Counter()

    def on_event(self, frame: bytes, received: float) -> None:
        if frame.startswith(self.BARS_PREFIX):
            delta = orjson.loads(frame[len(self.BARS_PREFIX) : -1])
            symbol, seq = delta["symbol"], int(delta["seq"])
            base = delta.get("base_seq")
            self.deltas.append((symbol, seq - 1 if base is None else int(base), seq, received))
            self.per_seq[(symbol, seq)] += 1
        elif frame.startswith(self.FIGURE_PREFIX):
            self.figures += 1


@dataclass
class Matched:
    latencies: list[float]  # seconds, one per (client, measured write) delivered
    to_queue: list[float]  # of those: write -> published (when the probe saw it)
    from_queue: list[float]  # ... and published -> received
    coalesced: int
    unmatched: int


def match(
    receipts: Sequence[Receipt],
    writes: Sequence[Write],
    measured_from: float,
    published: Published | None = None,
) -> Matched:
    """A receipt of ``seq`` over ``base_seq`` delivers every version in between; each
    written at or after ``measured_from`` gives one latency, split in two where the
    probe saw the delta published. A version no write made (or a receipt timed before
    its write) is counted as unmatched."""
    written = {(symbol, version): at for symbol, version, at in writes}
    published = published or {}
    result = Matched([], [], [], 0, 0)
    for symbol, base, seq, received in receipts:
        result.coalesced += seq - base > 1
        on_queue = published.get((symbol, seq))
        for version in range(base + 1, seq + 1):
            at = written.get((symbol, version))
            if at is None or received <= at:
                result.unmatched += 1
            elif at >= measured_from:
                result.latencies.append(received - at)
                if on_queue is not None:
                    result.to_queue.append(on_queue - at)
                    result.from_queue.append(received - on_queue)
    return result
