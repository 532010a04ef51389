"""``rtplot up``: the whole pipeline from one command, and a clean stop on Ctrl-C; and the
process toolkit it stands on (rtplot.processes), which the tests and benchmarks share."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

from common.settings import Settings
from rtplot.processes import RTPLOT, ProcessFailed, Stack, cpu_seconds
from rtplot.up import metrics_ports, services_for
from streamer import StandInStreamer
from support import ROOT, Listener, free_port, service_env, wait_until

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Up:
    """``rtplot up`` as a child, every line it prints (stdout and stderr) collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [*RTPLOT, "up"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        return str(
            wait_until(
                lambda: next((line for line in self.lines if text in line), None),
                timeout=timeout,
                message=repr(text),
            )
        )

    def child(self, service: str) -> int:
        for pid in children_of(self.process.pid):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if service.encode() in argv:
                return pid
        raise AssertionError(f"no {service} among the children")

    def stop(self) -> int:
        """Ctrl-C; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def output(self) -> str:
        return "\n".join(self.lines)


SUMMARY = re.compile(
    r"^\d\d:\d\d:\d\d  (\d+) symbols · [\d.]+ updates/s · (\d+) clients? · 0 errors"
    r"( · history: \d+ to fill)?$"
)


def test_up_runs_everything_with_a_private_redis_and_stops_cleanly_on_ctrl_c(
    listen: Callable[[str], Listener],
) -> None:
    """And says little: the URL, a summary line, at most 60 lines in its first 30 s."""
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    up = Up(service_env(dead_redis, port=str(port)))  # four symbols: the default
    try:
        url = f"http://127.0.0.1:{port}/"
        up.wait_for(f"open {url}")
        assert any("started a private one" in line for line in up.lines)
        children = children_of(up.process.pid)
        assert len(children) == 5  # worker, beat, renderer, gateway, redis-server
        listener = listen(url)
        assert listener.call("subscribe", {"symbol": "AAPL"})["ok"]
        first, _ = listener.next("figure", timeout=10)
        later, _ = listener.next("figure", timeout=10)
        assert later["seq"] > first["seq"]
        time.sleep(max(30 - (time.monotonic() - up.started), 0))
        first_30_s = list(up.lines)
        listener.close()
    finally:
        code = up.stop()
    assert code == 0, up.output()
    assert len(first_30_s) <= 60, "\n".join(first_30_s)
    summaries = [m for m in map(SUMMARY.match, first_30_s) if m]
    assert summaries, "\n".join(first_30_s)
    assert summaries[-1].group(1) == "4" and summaries[-1].group(2) == "1"  # symbols, clients
    assert not [line for line in first_30_s if "INFO" in line or "celery@" in line]
    for pid in children:
        wait_until(lambda pid=pid: not alive(pid), timeout=5, message=f"child {pid} to exit")


def test_up_with_the_stream_on_runs_it_and_the_page_gets_live_trades(
    listen: Callable[[str], Listener],
) -> None:
    """Offline: the chart API unreachable, trades from the stand-in streamer."""
    port = free_port()
    with StandInStreamer() as streamer:
        env = service_env(
            f"redis://127.0.0.1:{free_port()}/0",
            port=str(port), source="yfinance", stream="yahoo", stream_url=streamer.url,
            symbols="AAPL",
        )  # fmt: skip
        up = Up(env)
        try:
            up.wait_for(f"open http://127.0.0.1:{port}/")
            assert any("starting worker, beat, stream, renderer and gateway" in line
                       for line in up.lines)  # fmt: skip
            wait_until(lambda: streamer.subscribed == {"AAPL"}, message="AAPL subscribed")
            listener = listen(f"http://127.0.0.1:{port}/")
            assert listener.call("subscribe", {"symbol": "AAPL", "updates": "delta"})["ok"]
            # A trade at a time until one arrives as a delta (the first may be in the
            # snapshot, or folded with the next into one write).
            for cents in range(20):
                price = round(187.0 + cents / 100, 2)
                streamer.trade("AAPL", price, day_volume=10 * (cents + 1))
                with suppress(AssertionError):
                    shown = lambda d, p=price: d["bars"][-1][4] == p  # noqa: E731
                    listener.next("bars", timeout=2, where=shown)
                    break
            else:
                raise AssertionError("no trade reached the page as a delta")
            assert "Pandas4Warning" not in up.output()  # yfinance's, at every poll
            listener.close()
        finally:
            code = up.stop()
    assert code == 0, up.output()


def test_a_service_that_dies_is_named_with_the_end_of_its_log() -> None:
    up = Up(service_env(f"redis://127.0.0.1:{free_port()}/0", port=str(free_port())))
    try:
        up.wait_for("rtplot is up")
        os.kill(up.child("renderer"), signal.SIGKILL)
        up.wait_for("rtplot up: stopping the other services", timeout=10)
    finally:
        code = up.stop()
    assert code == 1
    output = up.output()
    assert "the renderer was killed by signal 9; the last lines of its log:" in output
    assert re.search(r"^  renderer \| .* renderer started", output, re.M), output
    kept = re.search(r"rtplot up: the services' logs are kept in (/\S+rtplot-up-\S+)", output)
    assert kept is not None and Path(kept.group(1)).is_dir()
    shutil.rmtree(kept.group(1))


def test_a_service_that_cannot_start_is_named_with_its_error() -> None:
    env = service_env(f"redis://127.0.0.1:{free_port()}/0", port=str(free_port()))
    up = Up({**env, "RTPLOT_JWT_KEY": "too short"})  # the gateway refuses it as it starts
    code = up.process.wait(timeout=60)
    up.stop()
    output = up.output()
    assert code == 1, output
    assert "rtplot up: the gateway exited with status 2; the last lines of its log:" in output
    assert re.search(r"^  gateway \| .*bad setting: RTPLOT_JWT_KEY", output, re.M), output
    assert "rtplot is up" not in output
    kept = re.search(r"logs are kept in (/\S+rtplot-up-\S+)", output)
    assert kept is not None
    shutil.rmtree(kept.group(1))


def test_up_on_a_port_in_use_says_so_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rtplot("up", env=service_env("redis://127.0.0.1:1/0", port=str(port)))
    assert result.returncode == 1
    assert f"rtplot up: 127.0.0.1:{port} is in use" in result.stderr
    assert "RTPLOT_PORT=8001 rtplot up" in result.stderr


def test_at_debug_up_shows_every_tick_and_render() -> None:
    env = service_env(f"redis://127.0.0.1:{free_port()}/0", port=str(free_port()))
    up = Up({**env, "RTPLOT_LOG_LEVEL": "DEBUG"})
    try:
        up.wait_for("worker DEBUG rtplot.fetcher: tick")
        up.wait_for("renderer DEBUG rtplot.renderer: rendered symbol=")
    finally:
        assert up.stop() == 0


def test_up_without_any_redis_says_what_is_missing_and_how_to_get_it() -> None:
    env = service_env(f"redis://127.0.0.1:{free_port()}/0", port=str(free_port()))
    env["PATH"] = "/nonexistent"  # no redis-server to fall back on
    result = rtplot("up", env=env)
    assert result.returncode == 1
    assert "no Redis answers at redis://127.0.0.1:" in result.stderr
    assert "redis-server is not on PATH" in result.stderr
    assert "apt-get install redis-server" in result.stderr


def test_up_with_sentinels_that_do_not_answer_refuses_instead_of_a_private_redis() -> None:
    # A Sentinel URL means a replicated Redis: a private one in its place would be a lie.
    env = service_env(f"redis+sentinel://127.0.0.1:{free_port()}/0/rtplot", port=str(free_port()))
    result = rtplot("up", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no Redis primary answers through the sentinels" in result.stderr
    assert "private" not in result.stdout


def test_a_bad_setting_stops_a_service_with_the_variable_named() -> None:
    result = rtplot("worker", env=dict(os.environ, RTPLOT_FETCH_INTERVAL="often"))
    assert result.returncode == 2
    assert "RTPLOT_FETCH_INTERVAL='often'" in result.stderr


def test_the_stream_on_another_source_stops_it_with_the_variable_named() -> None:
    env = dict(os.environ, RTPLOT_STREAM="yahoo", RTPLOT_SOURCE="synthetic")
    result = rtplot("stream", env=env)
    assert result.returncode == 2
    assert "rtplot stream: bad setting: RTPLOT_STREAM=yahoo" in result.stderr


def test_up_runs_the_stream_only_when_it_is_on() -> None:
    assert "stream" not in services_for(Settings.from_env({}))
    on = Settings.from_env({"RTPLOT_SOURCE": "yfinance", "RTPLOT_STREAM": "yahoo"})
    assert services_for(on) == ("worker", "beat", "stream", "renderer", "gateway")
    assert metrics_ports(on)["stream"] not in {metrics_ports(on)[s] for s in services_for(on)[:2]}


def rtplot(*args: str, env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [*RTPLOT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_stack_that_fails_to_start_stops_what_it_had_started() -> None:
    stack = Stack(symbols="AAPL")
    with pytest.raises(ProcessFailed) as failed, stack:
        stack.start("renderer")
        stack.start("worker", fetch_interval="often")  # refused at start: exits
    assert "worker exited with status 2" in str(failed.value)
    assert "RTPLOT_FETCH_INTERVAL='often'" in str(failed.value)  # the log's tail
    assert not stack.services["renderer"].alive()
    assert stack.redis.process is not None and stack.redis.process.poll() is not None
    assert not Path(stack.redis.dir).exists() and not stack.log_dir.exists()


def test_cpu_seconds_sees_milliseconds_the_kernels_ticks_round_away() -> None:
    # Each round the child works until its own CPU clock says 3 ms more: less than one of
    # /proc/PID/stat's 10 ms ticks, which read it as 0 more often than not. The child's
    # clock is the truth here, so a busy machine changes nothing but the wall time.
    burn = (
        "import sys, time\n"
        "for line in sys.stdin:\n"
        "    end = time.thread_time() + 0.003\n"
        "    while time.thread_time() < end: pass\n"
        "    print('done', flush=True)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as burner:
        readings = []
        for _ in range(4):
            before = cpu_seconds(burner.pid)
            burner.stdin.write("go\n")
            burner.stdin.flush()
            assert burner.stdout.readline() == "done\n"
            readings.append(cpu_seconds(burner.pid) - before)
        burner.stdin.close()  # the child ends
    assert all(0.003 <= used < 0.5 for used in readings), readings
