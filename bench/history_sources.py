"""Synthetic history for 200 symbols at each resolution (issue 19's sources part): 1d over
20 years, 1h over 2 years and 5m over 60 days, each in one ``history()`` call, with the
time spent making ``Bar`` objects shown apart.

    .venv/bin/python -m bench.history_sources exchange   # or: always
"""

import sys
import time

from common import resolutions
from common.bars import Bar
from common.resolutions import Resolution
from fetcher.sources.synthetic import SyntheticSource

NOW = 1_794_999_990.0  # 2026-11-18
YEAR = 365 * 86_400
DEPTHS = ((Resolution.D1, 20 * YEAR), (Resolution.H1, 2 * YEAR), (Resolution.M5, 60 * 86_400))
OTHERS = ["RELIANCE.NS", "BP.L", "SAP.DE", "7203.T", "EURUSD=X", "BTC-USD", "^GSPC", "ES=F",
          "BHP.AX", "TD.TO"]  # fmt: skip
SYMBOLS = [f"S{i:03d}" for i in range(190)] + OTHERS  # 190 New York, 10 other clocks


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "exchange"
    spent = [0.0]
    make_bars = resolutions.Columns.bars

    def timed_bars(self: resolutions.Columns) -> list[Bar]:
        started = time.perf_counter()
        bars = make_bars(self)
        spent[0] += time.perf_counter() - started
        return bars

    resolutions.Columns.bars = timed_bars  # type: ignore[method-assign]
    source = SyntheticSource(mode)
    for resolution, depth in DEPTHS:
        spent[0] = 0.0
        started = time.perf_counter()
        spans = {s: (int(NOW) - depth, int(NOW) + 1) for s in SYMBOLS}
        result = source.history(resolution, spans, NOW)
        took = time.perf_counter() - started
        bars = sum(map(len, result.bars.values()))
        print(
            f"{mode} {resolution} x {len(SYMBOLS)} symbols: {bars:,} bars in {took:.2f} s "
            f"({spent[0]:.2f} s of it making Bar objects)"
        )


if __name__ == "__main__":
    main()
