"""Which installed libraries are outside the releases a reach into their internals was
tested with (gateway.internals, fetcher.internals)."""

from collections.abc import Mapping
from importlib import metadata


def untested(tested: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The installed distributions of ``tested`` (name -> "major.minor" releases) whose
    version is not one of those, as "name version"; a missing one is not listed."""
    found = []
    for name, releases in tested.items():
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if ".".join(version.split(".")[:2]) not in releases:
            found.append(f"{name} {version}")
    return found
