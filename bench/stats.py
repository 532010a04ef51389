"""The two summaries every benchmark reports: percentiles of samples, medians of runs."""

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(samples: Iterable[float], fraction: float) -> float:
    """The sample below which ``fraction`` of them fall, by nearest rank (nan when there
    are none): a value that was measured, never one interpolated between two."""
    ordered: Sequence[float] = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(max(int(len(ordered) * fraction + 0.5) - 1, 0), len(ordered) - 1)]


def median(values: Iterable[float]) -> float:
    """The median of the finite values (a run that delivered nothing has no latency or
    cost per update to rank); nan if there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(statistics.median(finite)) if finite else math.nan
