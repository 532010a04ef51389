"""Installs the system packages rtplot needs that this machine lacks.

    python3 scripts/system_packages.py up check      # what `make check` runs

The packages are listed in scripts/system-packages.txt, by group. On Debian or Ubuntu
the missing ones are installed with apt-get (through sudo when not root); where that is
not possible (no apt-get, no sudo, macOS) it says what to install by hand and fails.
Nothing is printed when nothing is missing. Standard library only, and Python 3.8's
syntax: this runs before any virtualenv exists, on whatever python3 the machine has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

LIST = Path(__file__).with_name("system-packages.txt")
PYTHON_MIN = (3, 11)
APT_ENV = ("env", "DEBIAN_FRONTEND=noninteractive")
APT_QUIET = ("-o", "Dpkg::Use-Pty=0")  # no progress bars from dpkg


@dataclass(frozen=True)
class Need:
    group: str
    probe: str  # a command, an absolute path, or python:MODULE
    debian: str
    brew: str  # a formula, "-" (comes with another) or "none" (nothing fits)
    lean: bool  # without recommended packages


def read_list(path: Path = LIST) -> list[Need]:
    needs = []
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            group, probe, debian, brew, *flags = fields
            needs.append(Need(group, probe, debian, brew, "lean" in flags))
    return needs


@dataclass
class System:
    """What the script looks at and does; the tests fake it."""

    platform: str = sys.platform
    is_root: bool = hasattr(os, "geteuid") and os.geteuid() == 0
    python: str = sys.executable
    python_version: tuple[int, ...] = tuple(sys.version_info[:3])
    which: Callable[[str], str | None] = shutil.which
    run: Callable[[Sequence[str]], int] = lambda argv: subprocess.call(list(argv))

    def present(self, probe: str) -> bool:
        if probe.startswith("python:"):
            module = probe.split(":", 1)[1]
            argv = [self.python, "-c", f"import {module}"]
            return subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
        if probe.startswith("/"):
            return os.access(probe, os.X_OK)
        return self.which(probe) is not None


def missing(needs: Sequence[Need], groups: Sequence[str], system: System) -> list[Need]:
    return [n for n in needs if n.group in groups and not system.present(n.probe)]


def python_too_old(system: System) -> str | None:
    if system.python_version >= PYTHON_MIN:
        return None
    have = ".".join(map(str, system.python_version))
    want = ".".join(map(str, PYTHON_MIN))
    return (
        f"rtplot needs Python >= {want}; {system.python} is {have}.\n"
        f"  Install a newer one (Debian/Ubuntu: sudo apt-get install python{want} "
        f"python{want}-venv;\n  macOS: brew install python@{want}) and run make with it, "
        f"e.g. make PYTHON=python{want} up"
    )


def brew_advice(lacking: Sequence[Need], system: System) -> str:
    formulas = sorted({n.brew for n in lacking if n.brew not in ("-", "none")})
    lines = ["rtplot needs some programs this Mac lacks."]
    if formulas:
        if system.which("brew") is None:
            lines.append("  Install Homebrew (https://brew.sh), then:")
        lines.append(f"  brew install {' '.join(formulas)}")
    for need in lacking:
        if need.brew == "none":
            lines.append(
                f"  Homebrew has no {need.debian} for rtplot to use ({need.probe}); "
                f"the tests that need it run on Linux (Debian/Ubuntu)."
            )
    return "\n".join(lines)


def by_hand(lacking: Sequence[Need], why: str) -> str:
    names = " ".join(n.debian for n in lacking)
    lines = [f"rtplot needs these system packages, and {why}.", "  Install them by hand:"]
    lines.append(f"  apt-get install {names}    (Debian/Ubuntu names)")
    for need in lacking:
        lines.append(
            f"    {need.debian}: provides {need.probe.replace('python:', 'Python module ')}"
        )
    lines.append("  then run the same command again.")
    return "\n".join(lines)


def apt_commands(lacking: Sequence[Need], system: System) -> list[list[str]]:
    prefix = [] if system.is_root else ["sudo"]
    install = [*prefix, *APT_ENV, "apt-get", "install", "-y", "-qq", *APT_QUIET]
    commands = [[*prefix, *APT_ENV, "apt-get", "update", "-qq"]]
    full = [n.debian for n in lacking if not n.lean]
    lean = [n.debian for n in lacking if n.lean]
    if full:
        commands.append([*install, *full])
    if lean:
        commands.append([*install, "--no-install-recommends", *lean])
    return commands


def ensure(groups: Sequence[str], system: System, needs: Sequence[Need] | None = None) -> int:
    """0 when everything in ``groups`` is present (installing what was missing), 1 with
    a message on stderr saying what to install by hand when that is not possible."""
    if "up" in groups and (old := python_too_old(system)):
        return fail(old)
    lacking = missing(read_list() if needs is None else needs, groups, system)
    if not lacking:
        return 0
    if system.platform == "darwin":
        return fail(brew_advice(lacking, system))
    if not system.platform.startswith("linux") or system.which("apt-get") is None:
        return fail(by_hand(lacking, "this machine has no apt-get to install them with"))
    if not system.is_root and system.which("sudo") is None:
        return fail(by_hand(lacking, "installing them needs root (there is no sudo here)"))
    names = " ".join(n.debian for n in lacking)
    print(f"rtplot needs {names}: installing them with apt-get", file=sys.stderr, flush=True)
    for argv in apt_commands(lacking, system):
        print("+ " + " ".join(argv), file=sys.stderr, flush=True)
        if system.run(argv) != 0:
            return fail(by_hand(lacking, f"`{' '.join(argv)}` failed"))
    still = missing(lacking, groups, system)
    if still:
        return fail(by_hand(still, "they are still missing after apt-get install"))
    return 0


def fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    groups = list(sys.argv[1:] if argv is None else argv)
    known = {n.group for n in read_list()}
    if not groups or not set(groups) <= known:
        return fail(f"usage: {sys.argv[0]} GROUP... (groups: {', '.join(sorted(known))})")
    return ensure(groups, System())


if __name__ == "__main__":
    sys.exit(main())
