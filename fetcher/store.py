"""The fetcher's bar store: a window of each symbol's bars, written with the contract's
idempotent, versioned upsert (common.contract.store)."""

import secrets
import time
from collections.abc import Iterable, Sequence

import redis

from common.bars import MINUTE, Bar
from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.store import (
    Head,
    NewLineage,
    Upsert,
    Upserted,
    Writer,
    drop_symbol,
    read_bars,
    read_heads,
    read_market,
)
from common.markets import Market


def new_epoch() -> str:
    """A token no earlier epoch of any symbol has had: the time, to the microsecond,
    and some randomness (two fetchers may start a symbol in the same microsecond)."""
    return f"{time.time_ns() // 1000:x}{secrets.token_hex(2)}"


class BarStore:
    def __init__(self, client: "redis.Redis", keys: Keys, window_minutes: int) -> None:
        self.client = client
        self.keys = keys
        self.window_minutes = window_minutes
        self.scripts = Scripts(client, keys)

    def follow_lineage(self, symbols: Sequence[str]) -> int:
        """New epochs for ``symbols`` if this Redis' history is not the one their epochs
        were made under: how many symbols got one."""
        replid = str(self.client.info("replication").get("master_replid", ""))
        return self.scripts.run(NewLineage(replid, [(s, new_epoch()) for s in symbols]))

    def window_start(self, now: float) -> int:
        """The oldest minute kept: the window ends at the minute in progress."""
        return int(now // MINUTE) * MINUTE - (self.window_minutes - 1) * MINUTE

    def heads(self, symbols: Sequence[str]) -> dict[str, Head]:
        """Each symbol's newest stored minute and when its bars last changed."""
        return read_heads(self.client, self.keys, symbols)

    def upsert(
        self,
        symbol: str,
        bars: Iterable[Bar],
        as_of: float,
        now: float,
        market: Market | None = None,
        writer: Writer = "poll",
    ) -> Upserted:
        """Store the bars that differ; ``market``: where the symbol trades, if the source
        said (None keeps what is stored); ``writer``: the poll or the live stream."""
        call = Upsert(
            symbol, list(bars), as_of, self.window_start(now), new_epoch(), market, writer
        )
        return self.scripts.run(call)

    def bars(self, symbol: str) -> list[Bar]:
        return read_bars(self.client, self.keys, symbol)

    def market(self, symbol: str) -> Market | None:
        return read_market(self.client, self.keys, symbol)

    def drop(self, symbol: str) -> None:
        """Forget a symbol nobody tracks any more (bars, version, snapshots of every view)."""
        drop_symbol(self.client, self.keys, symbol)
