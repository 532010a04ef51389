"""Your own data source: found by ``module.path:ClassName`` or by an ``rtplot.sources``
entry point, refused with a clear reason when it cannot be used, and run through the
real pipeline (the example package in examples/, installed into a directory of its
own)."""

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from common.settings import SourceSpec
from fetcher.sources import SourceNotUsable, load_source, make_source
from fetcher.sources.base import FetchResult
from rtplot.processes import RTPLOT
from support import ROOT, Listener, running

EXAMPLE = ROOT / "examples" / "rtplot-wave-source"
NOW = 1_794_999_990.0


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package, ``pip install``ed into a directory of its own, as a user
    would install theirs (from a copy: a build leaves files behind)."""
    work = tmp_path_factory.mktemp("wave")
    shutil.copytree(EXAMPLE, work / "src")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target,
         work / "src"],
        check=True,
        timeout=300,
    )  # fmt: skip
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(installed))
    return installed


def test_a_source_named_by_its_entry_point_is_built(on_path: Path) -> None:
    source = make_source(SourceSpec("plugin", target="wave"))
    assert type(source).__name__ == "WaveSource" and source.name == "wave"
    result = source.fetch({"AAPL": int(NOW) - 300, "ERRX": int(NOW) - 300}, NOW)
    assert isinstance(result, FetchResult) and len(result.bars["AAPL"]) == 5
    assert result.errors == {"ERRX": "no data: this example has none for ERR symbols"}


def test_a_source_named_by_module_and_class_is_built(on_path: Path) -> None:
    source = make_source(SourceSpec("plugin", target="rtplot_wave:WaveSource"))
    assert source.name == "wave"


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    (tmp_path / "own_source.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("own_source", None)


@pytest.mark.parametrize(
    ("target", "module", "reason"),
    [
        ("no_such_module:Source", "", "cannot import no_such_module: ModuleNotFoundError"),
        ("own_source:Missing", "", "own_source has no Missing"),
        ("own_source:broken", "raise RuntimeError('half written')\n", "RuntimeError"),
        ("own_source:NOT_CALLABLE", "NOT_CALLABLE = 3\n", "cannot be called to make a source"),
        ("own_source:Fails", "class Fails:\n    def __init__(self):\n        1 / 0\n",
         "Fails() failed: ZeroDivisionError"),
        ("own_source:Nameless", "class Nameless:\n    def fetch(self, since, now): ...\n",
         "has no name"),
        ("own_source:NoFetch", "class NoFetch:\n    name = 'x'\n", "has no fetch(since, now)"),
        ("own_source:OneArg", "class OneArg:\n    name = 'x'\n    def fetch(self, since): ...\n",
         "cannot be called as fetch(since, now)"),
        ("not_installed", "", "no installed package registers a source named 'not_installed'"),
    ],
)  # fmt: skip
def test_a_source_that_cannot_be_used_is_refused_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, module: str, reason: str
) -> None:
    write_module(tmp_path, monkeypatch, module or "pass\n")
    with pytest.raises(SourceNotUsable) as refused:
        load_source(target)
    assert str(refused.value).startswith(f"RTPLOT_SOURCE={target}: ")
    assert reason in str(refused.value)


def test_an_entry_point_that_fails_to_load_is_refused(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    shutil.copytree(installed, site)
    (site / "rtplot_wave.py").write_text("raise ImportError('needs numpy 9')\n")
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop("rtplot_wave", None)
    with pytest.raises(SourceNotUsable, match=r"cannot load rtplot_wave:WaveSource: .*numpy 9"):
        load_source("wave")


@pytest.mark.e2e
def test_a_worker_given_a_source_it_cannot_use_stops_at_once_saying_why() -> None:
    env = dict(os.environ, RTPLOT_SOURCE="no_such_module:Source")
    result = subprocess.run(
        [*RTPLOT, "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "bad setting: RTPLOT_SOURCE=no_such_module:Source: cannot import" in result.stderr


@pytest.mark.e2e
def test_your_own_source_runs_through_the_whole_pipeline(
    installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker, and every service reading RTPLOT_SOURCE, find it on their path."""
    monkeypatch.setenv("PYTHONPATH", str(installed))
    sys.path.insert(0, str(installed))
    try:
        from rtplot_wave import price
    finally:
        sys.path.remove(str(installed))
    services = ("worker", "beat", "renderer", "gateway")
    with running(*services, source="wave", symbols="AAPL,ERRX", fetch_interval=1) as stack:
        listener = Listener(stack.url("gateway"))
        try:
            assert listener.call("subscribe", {"symbol": "AAPL", "chart": "candles"})["ok"]
            update, _ = listener.next("figure", timeout=30, where=lambda d: d["seq"] > 1)
            trace = update["figure"]["data"][0]
            assert trace["type"] == "candlestick" and len(trace["x"]) == 390
            # Finished minutes close at the wave's price at their last second; the clock is
            # UTC, as the source said, so x is the minute itself.
            finished = list(zip(trace["x"], trace["close"], strict=True))[:-1]
            assert all(close == price("AAPL", x // 1000 + 59) for x, close in finished)
            assert update["figure"]["layout"]["xaxis"]["title"]["text"] == "Time (UTC)"
            assert not stack.client.exists("rtplot:bars:ERRX")  # it said: no data
            with urllib.request.urlopen(stack.url("gateway") + "/", timeout=5) as page:
                assert b'"source_name":"wave"' in page.read()  # the page names it
        finally:
            listener.close()
