#!/bin/sh
# Starts a Redis server of docker-compose.sentinel.yml; "$@" is its redis-server command.
#
# After a failover the primary may be another server than the compose file says, so a
# server that starts (or restarts) asks the sentinels first: if they name a primary other
# than itself it starts as that one's replica, and if they name itself, as the primary.
# Only when no sentinel answers (the very first start) does REDIS_REPLICA_OF decide.
#
#   REDIS_NODE        host:port the others reach this server at (its replica-announce-ip)
#   REDIS_SENTINELS   the sentinels, host:port, separated by spaces
#   REDIS_SERVICE     the name they monitor the primary under
#   REDIS_REPLICA_OF  host:port of the primary to follow on a first start; unset: primary
set -eu

primary=""
for sentinel in $REDIS_SENTINELS; do
    reply=$(redis-cli -h "${sentinel%:*}" -p "${sentinel##*:}" --raw \
        SENTINEL get-master-addr-by-name "$REDIS_SERVICE" 2>/dev/null) || continue
    host=$(echo "$reply" | sed -n 1p)
    port=$(echo "$reply" | sed -n 2p)
    case "$port" in
        '' | *[!0-9]*) continue ;; # no answer, or an error
    esac
    primary="$host:$port"
    break
done
if [ -z "$primary" ]; then
    primary="${REDIS_REPLICA_OF:-$REDIS_NODE}"
fi
if [ "$primary" != "$REDIS_NODE" ]; then
    echo "redis-node: starting as a replica of $primary" >&2
    set -- "$@" --replicaof "${primary%:*}" "${primary##*:}"
else
    echo "redis-node: starting as the primary" >&2
fi
# The image's own entrypoint, where there is one: it runs Redis as the redis user.
if command -v docker-entrypoint.sh >/dev/null 2>&1; then
    exec docker-entrypoint.sh "$@"
fi
exec "$@"
