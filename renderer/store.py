"""The renderer's side of the store: the contract's read of what changed and write of a
render (common.contract.snapshots), on the renderer's client."""

import redis

from common.contract.keys import Keys
from common.contract.lua import Scripts
from common.contract.snapshots import (
    ForgetView,
    Read,
    ReadWindow,
    Stored,
    WriteRender,
    Written,
    read_view_states,
)


class RenderStore:
    def __init__(self, client: "redis.Redis", keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.scripts = Scripts(client, keys)

    def read(
        self, symbol: str, held_epoch: str = "", held_version: int = 0, views_since: float = 0.0
    ) -> Read:
        """``views_since``: the epoch second before which a view's stamp is too old."""
        return self.scripts.run(ReadWindow(symbol, held_epoch, held_version, views_since))

    def read_views(self, symbol: str, epoch: str, views: list[str]) -> dict[str, Stored]:
        """Each view's snapshot state, as ``Read.stored`` is the default view's."""
        return read_view_states(self.client, self.keys, symbol, epoch, views)

    def forget_view(self, symbol: str, view: str, cutoff: float) -> bool:
        return self.scripts.run(ForgetView(symbol, view, cutoff))

    def write(self, render: WriteRender) -> Written:
        return self.scripts.run(render)
