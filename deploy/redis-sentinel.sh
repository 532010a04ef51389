#!/bin/sh
# Starts a sentinel of docker-compose.sentinel.yml.
#
# A sentinel rewrites its own config file with what it learns (which server is primary
# now, the other sentinels and replicas), so the file is written on the first start only
# and kept, in the container's /data, across restarts.
#
#   SENTINEL_CONF            the config file (default /data/sentinel.conf)
#   SENTINEL_PORT            where it listens (default 26379)
#   SENTINEL_ANNOUNCE        the host name the others reach it at
#   SENTINEL_PRIMARY         host:port of the primary on the first start
#   SENTINEL_SERVICE         the name it monitors the primary under
#   SENTINEL_QUORUM          sentinels that must agree the primary is down (default 2)
#   SENTINEL_DOWN_AFTER_MS   silence before a sentinel thinks the primary down (default 5000)
#   SENTINEL_FAILOVER_TIMEOUT_MS   (default 30000)
#   REDIS_PASSWORD           the Redis servers' password (the sentinel itself takes none)
set -eu

conf="${SENTINEL_CONF:-/data/sentinel.conf}"
service="$SENTINEL_SERVICE"
if [ ! -s "$conf" ]; then
    cat >"$conf" <<CONF
port ${SENTINEL_PORT:-26379}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SENTINEL_ANNOUNCE
sentinel monitor $service ${SENTINEL_PRIMARY%:*} ${SENTINEL_PRIMARY##*:} ${SENTINEL_QUORUM:-2}
sentinel down-after-milliseconds $service ${SENTINEL_DOWN_AFTER_MS:-5000}
sentinel failover-timeout $service ${SENTINEL_FAILOVER_TIMEOUT_MS:-30000}
sentinel parallel-syncs $service 1
sentinel auth-pass $service "$REDIS_PASSWORD"
CONF
fi
set -- redis-server "$conf" --sentinel
# The image's own entrypoint, where there is one: it runs Redis as the redis user.
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
    exec docker-entrypoint.sh "$@"
fi
exec "$@"
