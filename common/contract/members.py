"""The members of the bar ZSET and the entries of the changes stream: each format with
the function that writes it and the one that reads it.

A bar is the compact JSON array ``[t, o, h, l, c, v]`` (common.bars): a 7-day window
of 10,080 bars stays small, and a renderer parses a whole read at once.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from common.bars import Bar
from common.contract.fields import ChangeField


def bar_member(bar: Bar) -> bytes:
    return orjson.dumps([bar.t, bar.o, bar.h, bar.l, bar.c, bar.v])


def bar_of(member: bytes | str) -> Bar:
    t, o, h, l, c, v = orjson.loads(member)  # noqa: E741
    return Bar(int(t), float(o), float(h), float(l), float(c), int(v))


def bar_rows(members: Sequence[bytes]) -> list[list[Any]]:
    """Many members as ``[t, o, h, l, c, v]`` lists: joined and parsed once, not per bar
    (the renderer reads hundreds a render)."""
    return orjson.loads(b"[" + b",".join(members) + b"]")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ChangeNotice:
    """An entry of the changes stream: a symbol's bars changed (the fetcher, with the
    version its write made), or a gateway wants a view rendered now (with its key)."""

    symbol: str
    version: int | None = None
    view: str | None = None

    def fields(self) -> dict[str, str | int]:
        """As XADD takes it (the scripts write the same with ``notice``)."""
        fields: dict[str, str | int] = {ChangeField.SYMBOL: self.symbol}
        if self.version is not None:
            fields[ChangeField.VERSION] = self.version
        if self.view is not None:
            fields[ChangeField.VIEW] = self.view
        return fields

    @classmethod
    def read(cls, fields: Mapping[bytes, bytes]) -> "ChangeNotice":
        version = fields.get(ChangeField.VERSION.encode())
        view = fields.get(ChangeField.VIEW.encode())
        return cls(
            fields[ChangeField.SYMBOL.encode()].decode(),
            None if version is None else int(version),
            None if view is None else view.decode(),
        )


# The scripts' writer of a notice (common.contract.lua puts it at their top).
LUA_NOTICE = """
local function notice(stream, maxlen, symbol, field, value)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', CHANGE.symbol, symbol, field, value)
end
"""
