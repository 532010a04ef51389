"""rtplot stream's own loop, in process on a real Redis: a connection loop that ends by
an error is started again at the next look, not left dead while the lock is held."""

import asyncio
import dataclasses

import pytest
import redis

from common.settings import Settings, SourceSpec
from stream.service import StreamService


def test_a_connection_loop_that_died_is_started_again(
    settings: Settings, client: "redis.Redis", caplog: pytest.LogCaptureFixture
) -> None:
    streaming = dataclasses.replace(settings, source=SourceSpec("yfinance"), stream="yahoo")
    service = StreamService(streaming, client)
    runs: list[int] = []

    async def broken() -> None:
        runs.append(1)
        raise RuntimeError("a bug of rtplot's own")

    service.connection.run = broken  # type: ignore[method-assign]

    async def looks() -> None:
        await service._look()  # takes the lock, starts the loop, which fails
        await asyncio.sleep(0.01)
        await service._look()  # sees it ended: logged, started again
        await asyncio.sleep(0.01)
        await service._step_down()

    asyncio.run(looks())
    assert len(runs) == 2 and service.active is False
    assert "connection loop ended" in caplog.text
