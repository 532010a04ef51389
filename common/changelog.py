"""A symbol's changelog: the first minute each version changed, for deltas.

A ZSET (``Keys.changelog``) whose score is the version and whose member is
``"<version>:<minute>"``: the earliest bar minute (epoch seconds) the version added or
replaced, or ``TRIM_ONLY`` when it only dropped bars off the window's start. The
fetcher's Lua upsert writes it (``LUA_ENTRY`` is the expression it uses, with its
locals ``version`` and ``first_changed``); the renderer reads it with ``parse``.
"""

TRIM_ONLY = -1
LUA_ENTRY = "version .. ':' .. first_changed"


def entry(version: int, minute: int) -> bytes:
    """The member the fetcher writes, as Python would (for tests and tools)."""
    return f"{version}:{minute}".encode()


def parse(member: bytes) -> tuple[int, int]:
    """(version, first changed minute or TRIM_ONLY)."""
    version, minute = member.split(b":")
    return int(version), int(minute)


def first_changed(entries: dict[int, int], since: int, version: int) -> int | None:
    """The earliest minute changed by versions ``since + 1 .. version``: None when one
    of them is missing from the changelog (too old: re-send everything), and a minute
    after every bar (``2**62``) when they only trimmed the window."""
    minutes = []
    for v in range(since + 1, version + 1):
        minute = entries.get(v)
        if minute is None:
            return None
        if minute != TRIM_ONLY:
            minutes.append(minute)
    return min(minutes) if minutes else NOTHING_CHANGED


NOTHING_CHANGED = 2**62  # later than any minute: no bar is re-sent
