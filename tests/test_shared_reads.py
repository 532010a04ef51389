"""Reads asked for in the same turn of the event loop go to Redis once; a read asked
for once the shared one was sent is a read of its own (so it sees every update the
asker holds); a failure reaches every sharer. Under asyncio and eventlet."""

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.contract.lua import ScriptCall
from gateway.shared_reads import SharedReads


@dataclass(frozen=True)
class Read(ScriptCall[str]):
    what: str


class Redis:
    """The one seam faked: counts the reads that would reach Redis."""

    def __init__(self, fail: bool = False) -> None:
        self.reads: list[str] = []
        self.fail = fail

    def answer(self, call: Read) -> str:
        self.reads.append(call.what)
        if self.fail:
            raise ConnectionError("Redis went away")
        return f"{call.what}#{len(self.reads)}"


def test_asyncio_askers_of_one_turn_share_a_read() -> None:
    redis = Redis()

    async def perform(call: Read) -> str:
        await asyncio.sleep(0.01)
        return redis.answer(call)

    async def main() -> tuple[list[Any], str]:
        shared = SharedReads(perform, asyncio.sleep)
        together = [shared.read_async(Read("AAPL")) for _ in range(5)]
        other = shared.read_async(Read("MSFT"))
        results = await asyncio.gather(*together, other)
        later = await shared.read_async(Read("AAPL"))
        return results, later

    results, later = asyncio.run(main())
    assert sorted(redis.reads) == ["AAPL", "AAPL", "MSFT"]
    assert len(set(results[:5])) == 1 and results[5].startswith("MSFT")
    assert later == "AAPL#3"  # sent after the first: a read of its own


def test_asyncio_a_failed_read_fails_every_sharer() -> None:
    redis = Redis(fail=True)

    async def perform(call: Read) -> str:
        return redis.answer(call)

    async def main() -> list[Any]:
        shared = SharedReads(perform, asyncio.sleep)
        asks = [shared.read_async(Read("AAPL")) for _ in range(3)]
        return await asyncio.gather(*asks, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert redis.reads == ["AAPL"]
    assert all(isinstance(o, ConnectionError) for o in outcomes)


EVENTLET_CHECK = """
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # it says it is in bugfix mode: rtplot knows
    import eventlet
from test_shared_reads import Read, Redis
from gateway.shared_reads import SharedReads

redis = Redis()

def perform(call):
    eventlet.sleep(0.01)
    return redis.answer(call)

shared = SharedReads(perform, eventlet.sleep)
threads = [eventlet.spawn(shared.read, Read("AAPL")) for _ in range(5)]
results = [thread.wait() for thread in threads]
assert redis.reads == ["AAPL"] and len(set(results)) == 1, (redis.reads, results)
assert shared.read(Read("AAPL")) == "AAPL#2"
"""


def test_eventlet_askers_of_one_turn_share_a_read() -> None:
    # In a process of its own: eventlet, once imported, warns at every fork, and the
    # other tests start their services by forking.
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])}
    done = subprocess.run(
        [sys.executable, "-c", EVENTLET_CHECK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
