"""``rtplot up``: the whole pipeline from one command, and a clean stop on Ctrl-C; and the
process toolkit it stands on (rtplot.processes), which the tests and benchmarks share."""

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rtplot.processes import RTPLOT, ProcessFailed, Stack
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


def test_up_runs_everything_with_a_private_redis_and_stops_cleanly_on_ctrl_c(
    listen: Callable[[str], Listener],
) -> None:
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = service_env(dead_redis, port=str(port))
    process = subprocess.Popen(
        [*RTPLOT, "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(
            lambda: any(f"open {url}" in line for line in lines),
            timeout=60,
            message="the URL to open",
        )
        assert any("started a private one" in line for line in lines)
        children = children_of(process.pid)
        assert len(children) == 5  # worker, beat, renderer, gateway, redis-server
        listener = listen(url)
        assert listener.call("subscribe", {"symbol": "AAPL"})["ok"]
        first, _ = listener.next("figure", timeout=10)
        later, _ = listener.next("figure", timeout=10)
        assert later["seq"] > first["seq"]
        listener.close()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0, "".join(lines[-30:])
    for pid in children:
        wait_until(lambda pid=pid: not alive(pid), timeout=5, message=f"child {pid} to exit")


def test_up_without_any_redis_says_what_is_missing_and_how_to_get_it() -> None:
    env = service_env(f"redis://127.0.0.1:{free_port()}/0")
    env["PATH"] = "/nonexistent"  # no redis-server to fall back on
    result = rtplot("up", env=env)
    assert result.returncode == 1
    assert "no Redis answers at redis://127.0.0.1:" in result.stderr
    assert "redis-server is not on PATH" in result.stderr
    assert "apt-get install redis-server" in result.stderr


def test_a_bad_setting_stops_a_service_with_the_variable_named() -> None:
    result = rtplot("worker", env=dict(os.environ, RTPLOT_FETCH_INTERVAL="often"))
    assert result.returncode == 2
    assert "RTPLOT_FETCH_INTERVAL='often'" in result.stderr


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
