"""Every Redis key and channel rtplot uses, built from the configured prefix.

Two deployments can share one Redis by giving each its own ``RTPLOT_KEY_PREFIX``.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "rtplot:"

    def bars(self, symbol: str) -> str:
        # ZSET: score = bar minute (epoch s), member = encoded bar; one member per minute.
        return f"{self.prefix}bars:{symbol}"

    def meta(self, symbol: str) -> str:
        # HASH: version (bumped on every change), as_of (source time of the last write).
        return f"{self.prefix}meta:{symbol}"

    def changelog(self, symbol: str) -> str:
        # ZSET: score = version, member = "version:first changed minute" (last 100 versions),
        # so a renderer can send only the bars that changed since the last snapshot.
        return f"{self.prefix}changelog:{symbol}"

    def snapshot(self, symbol: str, view: str = "") -> str:
        # HASH: one view's stored render (renderer.store lists the fields): the default
        # view's is "rtplot:snapshot:AAPL", another's "rtplot:snapshot:AAPL@candles.5m.vol".
        return (
            f"{self.prefix}snapshot:{symbol}@{view}" if view else f"{self.prefix}snapshot:{symbol}"
        )

    def views(self, symbol: str) -> str:
        # ZSET: view key -> epoch s a gateway last stamped it as watched (the default view
        # is always rendered and never listed). Renderers render a listed view while
        # someone subscribes to one of its rooms.
        return f"{self.prefix}views:{symbol}"

    @property
    def changes(self) -> str:
        # STREAM: one entry {symbol, version} per change; renderers read it as a group.
        return f"{self.prefix}changes"

    @property
    def watched(self) -> str:
        # ZSET: symbol -> epoch s it was last watched by a client (unconfigured symbols).
        return f"{self.prefix}watched"

    @property
    def tracked(self) -> str:
        # SET: the symbols the fetcher tracked at its last tick (for status pages).
        return f"{self.prefix}tracked"

    @property
    def socketio_channel(self) -> str:
        # PUB/SUB channel of python-socketio's message queue: emits from any process's
        # RedisManager (the stock channel); rtplot's own updates use room channels.
        return f"{self.prefix}socketio"

    def room_channel(self, room: str) -> str:
        # PUB/SUB channel of one room's updates, each message a Socket.IO event packet
        # (common.messages.event_packet); a gateway subscribes while a client is in it.
        return f"{self.prefix}room:{room}"

    @property
    def beat_prefix(self) -> str:
        # celery-redbeat's schedule and lock keys live under this prefix.
        return f"{self.prefix}beat:"

    @property
    def broker_prefix(self) -> str:
        # Celery's (kombu's) broker keys, so a shared Redis stays tidy.
        return f"{self.prefix}celery:"

    @property
    def lineage(self) -> str:
        # STRING: the Redis replication id the symbols' epochs were made under; another
        # one (a restart, a failover, a store replaced) starts new epochs.
        return f"{self.prefix}lineage"

    @property
    def source_backoff(self) -> str:
        # HASH: until (epoch s the source is left alone until), kind (the error's kind).
        return f"{self.prefix}source:backoff"

    @property
    def source_failures(self) -> str:
        # STRING: consecutive failed fetches, sets the back-off length (doubling).
        return f"{self.prefix}source:failures"

    def heartbeat(self, service: str) -> str:
        # STRING with TTL: epoch s of the service's last sign of life.
        return f"{self.prefix}heartbeat:{service}"


RENDER_GROUP = "renderers"  # consumer group of the changes stream
CHANGES_MAXLEN = 10_000  # approximate cap on the changes stream
CHANGELOG_LENGTH = 100  # versions remembered per symbol for deltas
