"""py-spy profiles of a benchmark's processes, summarised as tables.

    .venv/bin/python -m bench.profiles docs/profiles/fanout-asyncio.txt   # top functions

``record`` attaches py-spy to a running process for a fixed time and writes collapsed
stacks (one ``frame;frame;frame count`` line per distinct stack), which both a flame
graph tool and ``top`` can read. ``top`` lists where the samples are: *self* is time
spent in the function itself, *total* includes what it called.
"""

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 200  # samples per second: enough detail, little overhead on the profiled process


def available() -> bool:
    return shutil.which("py-spy") is not None or (Path(sys.executable).parent / "py-spy").exists()


def record(pid: int, seconds: float, out: Path) -> "subprocess.Popen[bytes]":
    """Starts sampling ``pid`` for ``seconds``; wait on the returned process."""
    executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            executable,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--nonblocking",  # do not pause the gateway to sample it
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Hotspot:
    function: str
    self_pct: float
    total_pct: float


def top(collapsed: Path, count: int = 15) -> list[Hotspot]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        n = int(number)
        samples += n
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):  # a recursive frame counts once per sample
            inclusive[frame] += n
    if not samples:
        return []
    return [
        Hotspot(function, 100 * n / samples, 100 * inclusive[function] / samples)
        for function, n in own.most_common(count)
    ]


def _short(frame: str) -> str:
    """'send (websockets/legacy/protocol.py:620)' -> 'send (websockets/legacy/protocol.py)':
    line numbers would split one function into many rows."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def markdown(hotspots: list[Hotspot]) -> str:
    lines = ["| function | self | total |", "| --- | ---: | ---: |"]
    lines += [f"| `{h.function}` | {h.self_pct:.1f} % | {h.total_pct:.1f} % |" for h in hotspots]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(top(Path(sys.argv[1]))))
