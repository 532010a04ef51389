"""Write docs/reliability.md from the rows the fault and bad-input tests recorded.

make test          # every test that injects a fault records a row
python -m tests.reliability_report
"""

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROWS = ROOT / "test-artifacts" / "reliability"
DOC = ROOT / "docs" / "reliability.md"

INTRO = """# Reliability

What rtplot does when things go wrong, as measured by its tests against real processes
and a real redis-server. This page is generated from those tests' records:

```sh
make install
make test
.venv/bin/python -m tests.reliability_report
```

Two longer runs are kept beside it: [a chaos soak](chaos.md) (`bench.chaos`: random
processes killed and frozen for 10 minutes under 200 clients) and [a soak](soak.md)
(`bench.soak`: memory and open files over time). Two faults at scale are benchmarks,
their before and after in [docs/benchmarks.md](benchmarks.md) ("Changes, before and
after"): `bench.resume`, a gateway killed under 1,000 and 4,000 clients that reconnect
to another and resume, and `bench.flood`, 100 connections subscribing to 50 distinct
views each against an honest page.

"""


def rows(table: str) -> list[dict[str, Any]]:
    path = ROWS / f"{table}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run the tests first (see this module's doc)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def faults_table() -> str:
    lines = [
        "## Faults injected",
        "",
        "| fault | what happened | recovery | lost |",
        "| --- | --- | --- | --- |",
    ]
    latest = {row["fault"]: row for row in rows("faults")}
    for row in latest.values():
        recovery = row["recovery_s"]
        recovery = f"{recovery} s" if isinstance(recovery, int | float) else recovery
        lines.append(f"| {row['fault']} | {row['outcome']} | {recovery} | {row['lost']} |")
    return "\n".join(lines)


def bad_input_table() -> str:
    lines = [
        "## Bad input at the gateway",
        "",
        "| input | response | gateway modes |",
        "| --- | --- | --- |",
    ]
    merged: dict[str, dict[str, Any]] = {}
    for row in rows("bad_input"):
        entry = merged.setdefault(row["input"], {"response": row["response"], "modes": set()})
        entry["modes"].add(row["mode"])
    for what, entry in merged.items():
        lines.append(f"| {what} | {entry['response']} | {', '.join(sorted(entry['modes']))} |")
    return "\n".join(lines)


def main() -> None:
    DOC.write_text(INTRO + faults_table() + "\n\n" + bad_input_table() + "\n")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
