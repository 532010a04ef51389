"""A symbol's changelog: the first minute each version changed, for deltas.

A ZSET (``Keys.changelog``) whose score is the version and whose member is
``"<version>:<minute>"``: the earliest bar minute (epoch seconds) the version added or
replaced, or ``TRIM_ONLY`` when it only dropped bars off the window's start. The
fetcher's upsert writes it and the renderer's read parses it, both in Lua, with the
functions ``LUA`` defines; Python writes and reads it with ``entry`` and ``parse``.
"""

TRIM_ONLY = -1
NOTHING_CHANGED = 2**62  # later than any minute: no bar is re-sent

# Put at the top of the scripts that use them (common.contract.lua).
LUA = r"""
local function changelog_entry(version, minute)
  return version .. ':' .. minute
end
local function changelog_parse(entry)
  local version, minute = string.match(entry, '^(%d+):(%-?%d+)$')
  return tonumber(version), tonumber(minute)
end
"""


def entry(version: int, minute: int) -> bytes:
    return f"{version}:{minute}".encode()


def parse(member: bytes) -> tuple[int, int]:
    """(version, first changed minute or TRIM_ONLY)."""
    version, minute = member.split(b":")
    return int(version), int(minute)


def first_changed(entries: dict[int, int], since: int, version: int) -> int | None:
    """The earliest minute changed by versions ``since + 1 .. version``: None when one
    of them is missing from the changelog (too old: re-send everything), and a minute
    after every bar (``NOTHING_CHANGED``) when they only trimmed the window."""
    minutes = []
    for v in range(since + 1, version + 1):
        minute = entries.get(v)
        if minute is None:
            return None
        if minute != TRIM_ONLY:
            minutes.append(minute)
    return min(minutes) if minutes else NOTHING_CHANGED
