#!/usr/bin/env bash
# Entrypoint of berth-test-redis, after the official redis image's: a first argument that is
# a flag or a .conf file means redis-server; protected mode is off (the official image
# compiles it off); started as root it chowns /data and drops to the redis user (uid 999).
set -euo pipefail
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "${BERTH_REDIS_DROPPED:-}" != 1 ]; then
  shift
  # The config file, when given, must stay redis-server's first argument; later arguments
  # win, so the caller's own --protected-mode still decides.
  if [ "$#" -gt 0 ] && [ "${1%.conf}" != "$1" ]; then
    conf="$1"; shift
    set -- redis-server "$conf" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || :
    BERTH_REDIS_DROPPED=1 exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
fi
unset BERTH_REDIS_DROPPED
if [ "$1" = redis-server ] && [ "$(umask)" = 0022 ]; then umask 0077; fi
exec "$@"
