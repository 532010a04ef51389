"""Market data sources behind one interface (``base.Source``): the built-in ones, and
your own, named by ``RTPLOT_SOURCE`` (docs/sources.md)."""

import importlib
import inspect
from importlib.metadata import entry_points
from typing import cast

from common.settings import SOURCES_GROUP, SettingsError, SourceSpec
from fetcher.sources.base import Source


class SourceNotUsable(SettingsError):
    """``RTPLOT_SOURCE`` names a source that cannot be imported or is not a Source."""


def make_source(spec: SourceSpec, market_hours: str = "always") -> Source:
    """Build the source a ``RTPLOT_SOURCE`` value names; ``market_hours`` is
    ``RTPLOT_MARKET_HOURS``, for the synthetic market."""
    if spec.kind == "synthetic":
        from fetcher.sources.synthetic import SyntheticSource

        return SyntheticSource(market_hours=market_hours)
    if spec.kind == "csv":
        from fetcher.sources.csv_replay import CsvReplaySource

        assert spec.path is not None
        return CsvReplaySource(spec.path)
    if spec.kind == "yfinance":
        from fetcher.sources.yahoo import YahooSource

        return YahooSource()
    if spec.kind == "plugin" and spec.target:
        return load_source(spec.target)
    raise ValueError(f"unknown source {spec.kind!r}")


def load_source(target: str) -> Source:
    """Your own source: ``module.path:ClassName``, or the name of an entry point in the
    ``rtplot.sources`` group; either is called with no arguments and must give a
    Source. Raises SourceNotUsable saying why not."""
    where = f"RTPLOT_SOURCE={target}"
    factory = _entry_point(target, where) if ":" not in target else _attribute(target, where)
    if not callable(factory):
        raise SourceNotUsable(f"{where}: {_name(factory)} cannot be called to make a source")
    try:
        source = factory()
    except Exception as exc:
        raise SourceNotUsable(f"{where}: {_name(factory)}() failed: {exc!r}") from exc
    problem = _not_a_source(source)
    if problem:
        raise SourceNotUsable(f"{where}: {_name(factory)}() gave {source!r}, which {problem}")
    return cast(Source, source)


def _attribute(target: str, where: str) -> object:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module failing as it loads
        raise SourceNotUsable(f"{where}: cannot import {module_name}: {exc!r}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise SourceNotUsable(f"{where}: {module_name} has no {attribute}") from None


def _entry_point(name: str, where: str) -> object:
    found = entry_points(group=SOURCES_GROUP, name=name)
    if not found:
        raise SourceNotUsable(
            f"{where}: no installed package registers a source named {name!r} "
            f"(entry point group {SOURCES_GROUP})"
        )
    entry = next(iter(found))
    try:
        return entry.load()
    except Exception as exc:
        raise SourceNotUsable(f"{where}: cannot load {entry.value}: {exc!r}") from exc


def _not_a_source(source: object) -> str | None:
    """Why ``source`` is not a Source, or None if it is one."""
    if not isinstance(getattr(source, "name", None), str):
        return "has no name (a string)"
    fetch = getattr(source, "fetch", None)
    if not callable(fetch):
        return "has no fetch(since, now) method"
    try:
        inspect.signature(fetch).bind({}, 0.0)
    except TypeError:
        return "has a fetch() that cannot be called as fetch(since, now)"
    except ValueError:  # no signature to inspect (a builtin): take it on trust
        pass
    return None


def _name(thing: object) -> str:
    return getattr(thing, "__qualname__", None) or repr(thing)
