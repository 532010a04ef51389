"""The contract's Lua scripts: KEYS and ARGV by name, the names of fields from
``common.contract.fields``, and each call a typed request and reply.

A script is written against names only. ``Lua.source`` puts them at its top::

    local META = {version = 'version', as_of = 'as_of', ...}   -- if the body uses META
    local bars, meta = KEYS[1], KEYS[2]
    local symbol, as_of = ARGV[1], ARGV[2]

A name starting with ``*`` takes the rest of KEYS or ARGV: it is the index of the first
of them (ARGV can be longer than Lua's ``unpack`` allows). A script that ``returns``
names ends with ``return reply({name = value, ...})`` and its caller reads the reply by
name, so neither side counts slots.

Each call is a frozen dataclass (a ``ScriptCall``) that says its keys and arguments by
name and turns the raw reply into a frozen dataclass of its own; ``Scripts`` runs them
on a client, blocking or asyncio.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from common.contract import changelog, members
from common.contract.fields import ChangeField, MetaField, SnapshotField
from common.contract.keys import Keys

Arg = str | bytes | int | float
KeyArgs = Mapping[str, str | Sequence[str]]
ArgArgs = Mapping[str, Arg | Sequence[Arg]]
R = TypeVar("R")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[A-Za-z0-9_.:@-]*")  # safe between single quotes


def _table(names: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k} = '{v}'" for k, v in names.items()) + "}"


def _numbers(table: Mapping[str, int]) -> str:
    return "{" + ", ".join(f"{k} = {int(v)}" for k, v in table.items()) + "}"


def _array(values: Sequence[str]) -> str:
    return "{" + ", ".join(f"'{v}'" for v in values) + "}"


# How many gateways subscribe to each channel, in order: the one way any script counts
# who watches a room.
_SUBSCRIBERS = """
local function subscribers(channels)
  local counts = {}
  if #channels == 0 then return counts end
  local numsub = redis.call('PUBSUB', 'NUMSUB', unpack(channels))
  for i = 2, #numsub, 2 do table.insert(counts, numsub[i]) end
  return counts
end
"""

# What a body may use without defining it, each put at its top only if the body (or
# another part put there) names it. In this order: a later part may use an earlier one.
PARTS: tuple[tuple[str, str], ...] = (
    ("META", f"local META = {_table({f.name.lower(): f.value for f in MetaField})}\n"),
    ("SNAP", f"local SNAP = {_table({f.name.lower(): f.value for f in SnapshotField})}\n"),
    ("CHANGE", f"local CHANGE = {_table({f.name.lower(): f.value for f in ChangeField})}\n"),
    ("changelog_entry|changelog_parse", changelog.LUA),
    ("notice", members.LUA_NOTICE),
    ("subscribers", _SUBSCRIBERS),
)


@dataclass(frozen=True, eq=False)
class Lua:
    keys: tuple[str, ...]
    args: tuple[str, ...]
    body: str
    returns: tuple[str, ...] = ()  # the names ``reply`` gives back, in order
    lists: Mapping[str, Sequence[str]] = field(default_factory=dict)  # Lua arrays by name
    tables: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # Lua constants

    def __post_init__(self) -> None:
        named = (*self.keys, *self.args, *self.returns, *self.lists, *self.tables)
        names = [n.lstrip("*") for n in named]
        names += [n for table in self.tables.values() for n in table]
        assert all(_NAME.fullmatch(n) for n in names), names
        for values in self.lists.values():
            assert all(_VALUE.fullmatch(v) for v in values), values
        for group in (self.keys, self.args):
            assert all(not n.startswith("*") for n in group[:-1]), group  # rest: last only

    @cached_property
    def source(self) -> str:
        top = [f"local {name} = {_array(values)}\n" for name, values in self.lists.items()]
        top += [f"local {name} = {_numbers(table)}\n" for name, table in self.tables.items()]
        used = self.body
        for names, code in reversed(PARTS):
            if re.search(rf"\b({names})\b", used):
                top.insert(0, code)
                used += code
        if self.returns:
            top.append(f"local REPLY = {_array(self.returns)}\n{_REPLY}")
        top += [_locals(self.keys, "KEYS"), _locals(self.args, "ARGV")]
        return "".join(top) + self.body

    def call(self, keys: KeyArgs, args: ArgArgs) -> tuple[list[str], list[Arg]]:
        """KEYS and ARGV in the script's order, from the same by name."""
        return _ordered(self.keys, keys), _ordered(self.args, args)

    def named(self, reply: Sequence[Any]) -> dict[str, Any]:
        """A ``reply({...})`` by name."""
        return dict(zip(self.returns, reply, strict=True))


_REPLY = """local function reply(values)
  local out = {}
  for i, name in ipairs(REPLY) do
    local value = values[name]
    if value == nil then value = false end
    out[i] = value
  end
  return out
end
"""


def _locals(names: tuple[str, ...], array: str) -> str:
    lines = []
    for i, name in enumerate(names, 1):
        if name.startswith("*"):
            lines.append(f"local {name[1:]} = {i}  -- the first of the rest of {array}\n")
        else:
            lines.append(f"local {name} = {array}[{i}]\n")
    return "".join(lines)


def _ordered(names: tuple[str, ...], given: Mapping[str, Any]) -> list[Any]:
    wanted = [n.lstrip("*") for n in names]
    if set(given) != set(wanted):
        raise TypeError(f"the script takes {wanted}, not {sorted(given)}")
    out: list[Any] = []
    for name in names:
        if name.startswith("*"):
            out.extend(given[name[1:]])
        else:
            out.append(given[name])
    return out


class ScriptCall(Generic[R]):
    """A call of one of the contract's scripts: a frozen dataclass whose fields are what
    it asks, and whose ``reply`` is what it gets back."""

    lua: ClassVar[Lua]

    def keys(self, keys: Keys) -> KeyArgs:
        raise NotImplementedError

    def args(self, keys: Keys) -> ArgArgs:
        raise NotImplementedError

    def reply(self, raw: Any) -> R:
        raise NotImplementedError


class Scripts:
    """The contract's scripts on one client: ``run`` on a ``redis.Redis``, ``run_async``
    on a ``redis.asyncio.Redis``. Each is loaded once (redis-py sends EVALSHA)."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.client, self.keys = client, keys
        self._loaded: dict[Lua, Any] = {}

    def _script(self, lua: Lua) -> Any:
        script = self._loaded.get(lua)
        if script is None:
            script = self._loaded[lua] = self.client.register_script(lua.source)
        return script

    def run(self, call: ScriptCall[R]) -> R:
        keys, args = call.lua.call(call.keys(self.keys), call.args(self.keys))
        return call.reply(self._script(call.lua)(keys=keys, args=args))

    def run_many(self, calls: Sequence[ScriptCall[R]]) -> list[R]:
        """Many calls in one round trip (a pipeline, not a transaction: each script is
        atomic on its own), their replies in order."""
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            keys, args = call.lua.call(call.keys(self.keys), call.args(self.keys))
            self._script(call.lua)(keys=keys, args=args, client=pipe)
        return [call.reply(raw) for call, raw in zip(calls, pipe.execute(), strict=True)]

    async def run_async(self, call: ScriptCall[R]) -> R:
        keys, args = call.lua.call(call.keys(self.keys), call.args(self.keys))
        return call.reply(await self._script(call.lua)(keys=keys, args=args))
