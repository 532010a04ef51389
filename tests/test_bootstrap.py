"""scripts/system_packages.py: what `make up`, `make check` and .ci/run install first.

Each platform's path is taken with a faked system (Debian as root and through sudo, no
sudo, no apt-get, macOS with and without Homebrew, an old Python), and the Debian one
also for real, as a process, with a fake apt-get first on PATH.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from scripts import system_packages as sp
from support import ROOT

SCRIPT = ROOT / "scripts/system_packages.py"


class Fake(sp.System):
    """A machine with ``have`` installed; apt-get "installs" by adding to it."""

    def __init__(self, have: Sequence[str] = (), *, apt_works: bool = True, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.have = set(have)
        self.apt_works = apt_works
        self.commands: list[list[str]] = []
        self.which = lambda name: f"/usr/bin/{name}" if name in self.have else None
        self.run = self._run

    def present(self, probe: str) -> bool:
        return probe in self.have

    def _run(self, argv: Sequence[str]) -> int:
        self.commands.append(list(argv))
        if "install" in argv and self.apt_works:
            self.have |= {n.probe for n in sp.read_list() if n.debian in argv}
        return 0 if self.apt_works else 100


NEEDS = sp.read_list()
UP = [n.probe for n in NEEDS if n.group == "up"]
CHECK = [n.probe for n in NEEDS if n.group == "check"]
EVERYTHING = [n.probe for n in NEEDS]
BASICS = ["apt-get", "sudo"]


def linux(have: Sequence[str], **kw: object) -> Fake:
    return Fake(have, platform="linux", python_version=(3, 11, 7), **kw)


def test_the_list_names_every_group_and_is_read_whole() -> None:
    assert {n.group for n in NEEDS} == {"up", "check", "docker"}
    assert {"redis-server", "python3-venv"} == {n.debian for n in NEEDS if n.group == "up"}
    assert {"nodejs", "npm", "chromium", "haproxy", "wget", "prometheus"} <= {
        n.debian for n in NEEDS if n.group == "check"
    }
    assert [n.debian for n in NEEDS if n.lean] == [
        "prometheus",
        "docker.io",
        "docker-compose",
        "debootstrap",
    ]


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="no apt-cache here")
def test_every_debian_package_in_the_list_exists() -> None:
    names = [n.debian for n in NEEDS]
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *names], capture_output=True, text=True
    )
    found = {
        line.split(": ", 1)[1]
        for line in result.stdout.splitlines()
        if line.startswith("Package: ")
    }
    assert found == set(names), set(names) - found


def test_nothing_missing_means_nothing_run_and_nothing_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = linux([*BASICS, *EVERYTHING])
    assert sp.ensure(["up", "check", "docker"], system) == 0
    assert system.commands == []
    assert capsys.readouterr().err == ""


def test_as_root_only_what_is_missing_is_installed_leanly_where_marked() -> None:
    system = linux(["apt-get", *UP, "node", "npm", "haproxy", "wget"], is_root=True)
    assert sp.ensure(["up", "check"], system) == 0
    env, quiet = list(sp.APT_ENV), list(sp.APT_QUIET)
    assert system.commands == [
        [*env, "apt-get", "update", "-qq"],
        [*env, "apt-get", "install", "-y", "-qq", *quiet, "chromium"],
        [*env, "apt-get", "install", "-y", "-qq", *quiet, "--no-install-recommends", "prometheus"],
    ]


def test_make_up_asks_only_for_what_running_needs() -> None:
    system = linux(BASICS, is_root=False)
    assert sp.ensure(["up"], system) == 0
    installed = [c for c in system.commands if "install" in c]
    assert installed == [
        [
            "sudo",
            *sp.APT_ENV,
            "apt-get",
            "install",
            "-y",
            "-qq",
            *sp.APT_QUIET,
            "python3-venv",
            "redis-server",
        ]
    ]
    assert system.commands[0][0] == "sudo"  # the update too


def test_without_root_or_sudo_it_says_what_to_install_and_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = linux(["apt-get", "python:ensurepip"], is_root=False)
    assert sp.ensure(["up"], system) == 1
    assert system.commands == []
    err = capsys.readouterr().err
    assert "installing them needs root (there is no sudo here)" in err
    assert "apt-get install redis-server" in err
    assert "redis-server: provides redis-server" in err


def test_without_apt_get_it_says_what_to_install_and_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = linux(["sudo"], is_root=True)
    assert sp.ensure(["up"], system) == 1
    err = capsys.readouterr().err
    assert "this machine has no apt-get to install them with" in err
    assert "apt-get install python3-venv redis-server" in err
    assert "python3-venv: provides Python module ensurepip" in err


def test_a_failed_apt_get_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    system = linux(BASICS, is_root=True, apt_works=False)
    assert sp.ensure(["up"], system) == 1
    assert "`env DEBIAN_FRONTEND=noninteractive apt-get update -qq` failed" in (
        capsys.readouterr().err
    )


def test_on_macos_it_names_the_formulas_and_what_homebrew_lacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = Fake(["brew", "python:ensurepip"], platform="darwin", python_version=(3, 12, 4))
    assert sp.ensure(["up", "check"], system) == 1
    assert system.commands == []
    err = capsys.readouterr().err
    assert "brew install haproxy node prometheus redis wget\n" in err
    assert "Install Homebrew" not in err
    assert "Homebrew has no chromium for rtplot to use (/usr/bin/chromium)" in err
    assert "apt-get" not in err


def test_on_a_mac_without_homebrew_it_says_to_get_it(capsys: pytest.CaptureFixture[str]) -> None:
    system = Fake(["python:ensurepip"], platform="darwin", python_version=(3, 12, 4))
    assert sp.ensure(["up"], system) == 1
    err = capsys.readouterr().err
    assert "Install Homebrew (https://brew.sh), then:\n  brew install redis" in err


def test_a_python_too_old_for_rtplot_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    system = Fake([*BASICS, *EVERYTHING], platform="linux", python_version=(3, 10, 12))
    assert sp.ensure(["up"], system) == 1
    err = capsys.readouterr().err
    assert "rtplot needs Python >= 3.11;" in err and "is 3.10.12" in err
    assert "make PYTHON=python3.11 up" in err


def test_an_unknown_group_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert sp.main(["up", "bogus"]) == 1
    assert "groups: check, docker, up" in capsys.readouterr().err


def test_for_real_it_runs_apt_get_for_what_is_missing_and_then_finds_it(tmp_path: Path) -> None:
    """A process, as make runs it, on a PATH with only a fake apt-get: it "installs" a
    package by creating the command the list expects of it."""
    if os.geteuid() != 0:
        pytest.skip("the real run installs as root, without sudo")
    log = tmp_path / "apt.log"
    commands = {n.debian: n.probe for n in NEEDS if not n.probe.startswith(("/", "python:"))}
    creates = "\n".join(
        f'  {pkg}) printf "#!/bin/sh\\n" > "{tmp_path}/{cmd}"; /bin/chmod +x "{tmp_path}/{cmd}";;'
        for pkg, cmd in commands.items()
    )
    (tmp_path / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> "{log}"\nfor p in "$@"; do case "$p" in\n{creates}\nesac; done\n'
    )
    (tmp_path / "apt-get").chmod(0o755)
    (tmp_path / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq -o Dpkg::Use-Pty=0 redis-server",
    ]
    assert "rtplot needs redis-server: installing them with apt-get" in result.stderr
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and again.stderr == ""  # nothing missing: silent
    assert len(log.read_text().splitlines()) == 2
