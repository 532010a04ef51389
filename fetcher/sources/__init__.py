"""Market data sources behind one interface (``base.Source``)."""

from common.settings import SourceSpec
from fetcher.sources.base import Source


def make_source(spec: SourceSpec) -> Source:
    """Build the source a ``RTPLOT_SOURCE`` value names."""
    if spec.kind == "synthetic":
        from fetcher.sources.synthetic import SyntheticSource

        return SyntheticSource()
    if spec.kind == "csv":
        from fetcher.sources.csv_replay import CsvReplaySource

        assert spec.path is not None
        return CsvReplaySource(spec.path)
    if spec.kind == "yfinance":
        from fetcher.sources.yahoo import YahooSource

        return YahooSource()
    raise ValueError(f"unknown source {spec.kind!r}")
