"""What ``rtplot up`` prints, without processes: which of the services' lines it passes
on, its summary line, and the ports and URLs it names (tests/test_up.py runs it)."""

import io
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from common.logs import JsonFormatter, TextFormatter, line_level
from common.settings import METRICS_PORTS, Settings
from rtplot import processes, up
from rtplot.processes import Service


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"levelno": level, "levelname": logging.getLevelName(level), "msg": msg, "name": "x"}
    )


def test_every_kind_of_line_a_service_writes_has_its_level() -> None:
    for formatter in (TextFormatter("worker"), JsonFormatter("worker")):
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
            assert line_level(formatter.format(record(level, "hello\nsecond line"))) == level
    assert line_level("ERROR:    [Errno 98] address already in use") == logging.ERROR  # uvicorn
    assert line_level("/x/platforms.py:893: SecurityWarning: You're running") == logging.WARNING
    assert line_level("Traceback (most recent call last):") == logging.ERROR
    for continued in ('  File "x.py", line 1', "second line", "{not json", "[1]", "NOTALEVEL: x"):
        assert line_level(continued) is None


def relayed(tmp_path: Path, text: str, show_all: bool = False) -> str:
    log = tmp_path / "worker.log"
    log.write_text("")
    service = Service.__new__(Service)
    service.name, service.log_path = "worker", log
    tail = up.Tail(service, show_all=show_all)
    out = io.StringIO()
    with log.open("a") as writer:
        for chunk in (text[:37], text[37:]):  # a line split across two reads
            writer.write(chunk)
            writer.flush()
            tail.pump(out)
    return out.getvalue()


LOG = (
    "2026-11-29 13:22:48,471 worker INFO celery.beat: beat: Starting...\n"
    "2026-11-29 13:22:48,472 worker DEBUG rtplot.fetcher: tick symbols=4\n"
    "2026-11-29 13:22:49,000 worker ERROR rtplot.fetcher: tick failed\n"
    "Traceback (most recent call last):\n"
    '  File "x.py", line 1, in <module>\n'
    "ValueError: boom\n"
    "2026-11-29 13:22:50,000 worker INFO rtplot.fetcher: recovered\n"
    "  with a second line\n"
    "/x/platforms.py:893: SecurityWarning: You're running the worker as root\n"
)


def test_up_passes_on_warnings_and_errors_with_their_lines_and_nothing_else(
    tmp_path: Path,
) -> None:
    assert relayed(tmp_path, LOG).splitlines() == [
        "2026-11-29 13:22:49,000 worker ERROR rtplot.fetcher: tick failed",
        "worker | Traceback (most recent call last):",
        'worker |   File "x.py", line 1, in <module>',
        "worker | ValueError: boom",
        "worker | /x/platforms.py:893: SecurityWarning: You're running the worker as root",
    ]


def test_at_debug_up_passes_on_everything(tmp_path: Path) -> None:
    lines = relayed(tmp_path, LOG, show_all=True).splitlines()
    assert len(lines) == LOG.count("\n")
    assert "2026-11-29 13:22:48,472 worker DEBUG rtplot.fetcher: tick symbols=4" in lines


def test_a_password_in_the_redis_url_is_never_printed() -> None:
    assert up.redacted("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert up.redacted("rediss://me:s3cret@h:1/2") == "rediss://me:***@h:1/2"
    assert up.redacted("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_metrics_ports_are_the_services_defaults_where_they_are_free() -> None:
    streaming = {"RTPLOT_SOURCE": "yfinance", "RTPLOT_STREAM": "yahoo"}  # every service
    ports = up.metrics_ports(Settings.from_env(streaming))
    assert ports["gateway"] == 8000
    for name, default in METRICS_PORTS.items():
        if up._port_free("127.0.0.1", default):
            assert ports[name] == default


def test_a_metrics_port_in_use_is_replaced_by_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base = taken.getsockname()[1]
        ports = up.metrics_ports(Settings.from_env({"RTPLOT_METRICS_PORT": str(base)}))
    assert ports["worker"] != base
    assert len({ports["worker"], ports["beat"], ports["renderer"]}) == 3


def supervisor(monkeypatch: pytest.MonkeyPatch, metrics: dict[str, dict[str, float] | None]) -> Any:
    settings = Settings.from_env({})
    children: list[Service] = []
    ports = {"gateway": 8000, "worker": 1, "beat": 2, "renderer": 3}
    sup = up.Supervisor(settings, children, ports, Path("/tmp/x"))
    by_port = {str(port): name for name, port in ports.items()}

    def scrape(url: str) -> dict[str, float] | None:
        return metrics[by_port[url.split(":")[2].split("/")[0]]]

    monkeypatch.setattr(up, "scrape", scrape)
    return sup


def test_the_summary_line_says_symbols_rate_clients_and_errors_when_they_change(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = {"rtplot_fetcher_tracked_symbols": 4.0}
    renderer = {"rtplot_renderer_renders_total": 100.0}
    gateway = {"rtplot_gateway_clients": 0.0}
    # The beat exports the fetcher's families as well, at zero: never read from it.
    beat = {"rtplot_fetcher_tracked_symbols": 0.0}
    sup = supervisor(
        monkeypatch, {"worker": worker, "renderer": renderer, "gateway": gateway, "beat": beat}
    )
    sup.summary(1000.0)  # the first reading: nothing to say yet
    assert capsys.readouterr().out == ""
    renderer["rtplot_renderer_renders_total"] = 140.0
    sup.summary(1010.0)
    assert capsys.readouterr().out.endswith("  4 symbols · 4.0 updates/s · 0 clients · 0 errors\n")
    renderer["rtplot_renderer_renders_total"] = 180.0
    sup.summary(1020.0)  # only the rate moved: quiet for a minute
    assert capsys.readouterr().out == ""
    gateway["rtplot_gateway_clients"] = 1.0
    worker["rtplot_fetcher_ticks_total{outcome=error}"] = 2.0
    sup.summary(1030.0)
    assert capsys.readouterr().out.endswith(" · 1 client · 2 errors\n")
    sup.summary(1030.0 + up.SUMMARY_QUIET)
    assert "4 symbols" in capsys.readouterr().out  # a minute on, said again
    worker["rtplot_fetcher_history_pending"] = 6.0  # the history of new symbols on its way
    sup.summary(1100.0)
    assert capsys.readouterr().out.endswith(" · 2 errors · history: 6 to fill\n")
    worker["rtplot_fetcher_history_pending"] = 0.0
    sup.summary(1110.0)
    assert capsys.readouterr().out.endswith(" · 2 errors\n")  # filled: said no more


def test_a_service_whose_metrics_do_not_answer_is_named_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = supervisor(monkeypatch, {"worker": None, "renderer": {}, "gateway": {}, "beat": {}})
    sup.summary(1000.0)
    sup.summary(1010.0)
    out = capsys.readouterr().out
    assert out.count("rtplot up: no answer from the /metrics of worker") == 1


def test_a_free_port_comes_from_below_the_ports_clients_connect_from() -> None:
    # Outgoing connections take their local port from the ephemeral range: a port from it
    # could be taken by any client in a busy test run before a service binds it.
    low = processes._ephemeral_low()
    ports = {processes.free_port() for _ in range(20)}
    assert all(low - processes.FREE_PORT_SPAN <= port < low for port in ports)
    assert len(ports) > 15  # chosen at random, not in a sequence tests could collide on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # and free
