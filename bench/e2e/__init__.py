"""End to end: from a bar written to Redis to a client's receipt, under load.

    .venv/bin/python -m bench.e2e                      # 1,000 and 5,000 clients, both modes
    .venv/bin/python -m bench.e2e --quick              # 1,000 clients, asyncio, ~20 s
    .venv/bin/python -m bench.e2e --clients 2000 --seconds 10 --repeats 3 --modes asyncio

Each run starts a private redis-server, ``rtplot renderer`` and one ``rtplot gateway`` on
loopback, backfills a day (390 bars) of synthetic bars for 20 symbols, and connects N
lean clients (bench.loadgen) subscribed round-robin in delta mode, as the page does. The
benchmark then plays the fetcher: once a second it writes the minute in progress of every
symbol with the fetcher's own store (``BarStore.upsert``: the Lua upsert that bumps the
version and appends the change notice the renderer reads), noting ``time.time()`` just
before each write. The renderer publishes that version as the delta's ``seq``, so each
``bars`` event a client receives is matched to the writes it carries (``base_seq + 1 ..
seq``; more than one when the renderer coalesced a burst) and each gives a latency.

The writer is a subprocess of its own, so neither its CPU nor its GIL is the load
generator's. It also listens on the delta rooms' Redis channels, as the gateways do, and
notes when each delta is published, which splits every latency in two: write -> on the
queue (the renderer's part, Redis included) and queue -> client (the gateway's, and the
load generator's).

Clients connect in waves of WAVE, each wave waiting for its snapshots. Connected all at
once (200 handshakes in flight), the asyncio gateway refuses some subscribes with
"temporarily unavailable": each subscribe awaits a Redis read, and redis-py's asyncio pool
(100 connections by default) raises "Too many connections" instead of waiting for one.

The parts: ``market`` (what is written), ``writer`` (the writer subprocess and its probe
on the queue), ``matching`` (receipts to writes), ``runs`` (the processes, one run, the
medians), ``report`` (the Markdown table).
"""

from bench.e2e.matching import match
from bench.e2e.report import markdown, summary
from bench.e2e.runs import ResultRow, RunResult, run

__all__ = ["ResultRow", "RunResult", "markdown", "match", "run", "summary"]
