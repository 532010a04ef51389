"""Every Redis key and channel rtplot uses, built from the configured prefix.

Two deployments can share one Redis by giving each its own ``RTPLOT_KEY_PREFIX``. What
each key holds is named here; the fields of each hash and stream entry are in
``common.contract.fields``, the formats of their members in the modules that write and
read them (``changelog``, ``members``, ``packets``).
"""

from dataclasses import dataclass

from common.contract.rooms import Mode, Room, views_prefix

DEFAULT_PREFIX = "rtplot:"  # RTPLOT_KEY_PREFIX's default
RENDER_GROUP = "renderers"  # consumer group of the changes stream
FETCH_QUEUE = "rtplot.fetch"  # the fetcher's Celery queue (Keys.fetch_queue)
CHANGES_MAXLEN = 10_000  # approximate cap on the changes stream
CHANGELOG_LENGTH = 100  # versions remembered per symbol for deltas


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def bars(self, symbol: str) -> str:
        # ZSET: score = bar minute (epoch s), member = members.bar_member; one per minute.
        return f"{self.prefix}bars:{symbol}"

    def meta(self, symbol: str) -> str:
        # HASH: fields.MetaField (version, epoch, as_of, changed_at, stored_at, market).
        return f"{self.prefix}meta:{symbol}"

    def changelog(self, symbol: str) -> str:
        # ZSET: score = version, member = changelog.entry (the last CHANGELOG_LENGTH), so
        # a renderer can send only the bars that changed since the last snapshot.
        return f"{self.prefix}changelog:{symbol}"

    def snapshot(self, symbol: str, view: str = "") -> str:
        # HASH: fields.SnapshotField, one view's stored render: the default view's is
        # "rtplot:snapshot:AAPL", another's "rtplot:snapshot:AAPL@candles.5m.vol".
        return (
            f"{self.prefix}snapshot:{symbol}@{view}" if view else f"{self.prefix}snapshot:{symbol}"
        )

    def deltas(self, symbol: str, view: str = "") -> str:
        # ZSET: score = seq, member = the `bars` payload published for that render of
        # the view (its base_seq the render before), the last RTPLOT_RESUME_SECONDS'
        # worth: what carries a client that held an earlier seq to now (resume).
        return f"{self.prefix}deltas:{symbol}@{view}" if view else f"{self.prefix}deltas:{symbol}"

    def history(self, symbol: str, resolution: str) -> str:
        # ZSET: score = a chunk's start (epoch s), member = the chunk's bars, a JSON
        # array of [t, o, h, l, c, v] rows (history.CHUNK_SECONDS); the symbol's bars of
        # one coarser resolution ("5m", "1h", "1d": common.resolutions), kept for longer
        # than the minutes (RTPLOT_HISTORY_DAYS): the past of its views.
        return f"{self.prefix}history:{symbol}:{resolution}"

    def history_filled(self, symbol: str) -> str:
        # HASH: resolution -> epoch s the fetcher last asked the source for its history
        # (fetcher.history: asked again after RTPLOT_HISTORY_REFRESH).
        return f"{self.prefix}history-filled:{symbol}"

    def views(self, symbol: str) -> str:
        # ZSET: view key -> epoch s a gateway last stamped it as watched (the default view
        # is always rendered and never listed). Renderers render a listed view while
        # someone subscribes to one of its rooms.
        return f"{self.prefix}views:{symbol}"

    @property
    def changes(self) -> str:
        # STREAM: one members.ChangeNotice per change of a symbol's bars (fetcher) or
        # per view a gateway wants rendered now; renderers read it as RENDER_GROUP.
        return f"{self.prefix}changes"

    @property
    def watched_views(self) -> str:
        # ZSET: watching.view_member (symbol@view) -> epoch s a gateway last stamped it:
        # every view other than the default one watched, for the cap in all.
        return f"{self.prefix}watched-views"

    @property
    def watched(self) -> str:
        # ZSET: symbol -> epoch s it was last watched by a client (unconfigured symbols).
        return f"{self.prefix}watched"

    @property
    def tracked(self) -> str:
        # SET: the symbols the fetcher tracked at its last tick (for status pages).
        return f"{self.prefix}tracked"

    @property
    def stream_lock(self) -> str:
        # STRING with TTL: the token of the one `rtplot stream` that consumes the live
        # stream; a second one waits as a standby until it expires.
        return f"{self.prefix}stream:lock"

    @property
    def streaming(self) -> str:
        # ZSET: symbol -> epoch s of the last trade the live stream wrote for it (the
        # page marks the charts it feeds; status pages).
        return f"{self.prefix}stream:symbols"

    @property
    def socketio_channel(self) -> str:
        # PUB/SUB channel of python-socketio's message queue: emits from any process's
        # RedisManager (the stock channel); rtplot's own updates use room channels.
        return f"{self.prefix}socketio"

    @property
    def room_channels(self) -> str:
        # Where every room's channel name starts.
        return f"{self.prefix}room:"

    def channel(self, room: Room) -> str:
        # PUB/SUB channel of one room's updates, each message a packets.event_packet; a
        # gateway subscribes while a client is in the room.
        return f"{self.room_channels}{room.name}"

    def room_of(self, channel: bytes | str) -> Room | None:
        """The room whose channel this is; None for any other channel."""
        name = channel.decode() if isinstance(channel, bytes) else channel
        if not name.startswith(self.room_channels):
            return None
        try:
            return Room.parse(name[len(self.room_channels) :])
        except ValueError:
            return None

    def views_channel_prefix(self, symbol: str, mode: Mode) -> str:
        # The channel of the symbol's `mode` room of a view, less the view's key.
        return f"{self.room_channels}{views_prefix(symbol, mode)}"

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
        # HASH: fields.BackoffField (until: epoch s the source is left alone until; kind).
        return f"{self.prefix}source:backoff"

    @property
    def source_failures(self) -> str:
        # STRING: consecutive failed fetches, sets the back-off length (doubling).
        return f"{self.prefix}source:failures"

    def heartbeat(self, service: str) -> str:
        # STRING with TTL: epoch s of the service's last sign of life.
        return f"{self.prefix}heartbeat:{service}"

    def renderer_heartbeat(self, consumer: str) -> str:
        # A renderer's heartbeat, by its consumer name in RENDER_GROUP.
        return self.heartbeat(f"renderer:{consumer}")

    @property
    def fetch_queue(self) -> str:
        # LIST: the fetcher's Celery queue (kombu's Redis transport keeps a queue in a
        # list of the queue's name, under the broker prefix).
        return f"{self.broker_prefix}{FETCH_QUEUE}"
