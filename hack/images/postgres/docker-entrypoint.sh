#!/usr/bin/env bash
# Entrypoint of berth-test-postgres: the environment contract of the official postgres
# image (POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD, PGDATA, /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz),
# re-implemented for Debian's PostgreSQL: started as root it prepares PGDATA (e.g. a fresh
# volume) and drops to the postgres user (uid 999) with setpriv; started as 999 it runs as is.
set -Eeuo pipefail

want_help() {
  local arg
  for arg; do
    case "$arg" in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac
  done
  return 1
}

setup_env() {
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  : "${POSTGRES_INITDB_ARGS:=}"
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  : "${POSTGRES_PASSWORD:=}"
  export POSTGRES_USER POSTGRES_DB
  DATABASE_ALREADY_EXISTS=""
  if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

create_directories() {
  local uid
  uid="$(id -u)"
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" 2>/dev/null || :
  mkdir -p /var/run/postgresql || :
  chmod 03775 /var/run/postgresql 2>/dev/null || :
  if [ "$uid" = 0 ]; then
    find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  fi
}

verify_minimum_env() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       Or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password.
MSG
    exit 1
  fi
}

init_database_dir() {
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments, as upstream
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    $POSTGRES_INITDB_ARGS
}

setup_hba_conf() {
  {
    printf '\n'
    if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
      printf '# warning trust is enabled for all connections\n'
    fi
    printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
  } >> "$PGDATA/pg_hba.conf"
}

psql_cmd() {
  PGHOST=/var/run/postgresql PGPORT="${PGPORT:-5432}" PGPASSWORD="$POSTGRES_PASSWORD" \
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

temp_server_start() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" \
    -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
}

temp_server_stop() {
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

setup_db() {
  local exists
  if [ "$POSTGRES_DB" != postgres ]; then
    exists="$(psql_cmd --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<'SQL'
SELECT 1 FROM pg_database WHERE datname = :'db' ;
SQL
)"
    if [ -z "${exists// /}" ]; then
      psql_cmd --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db" ;
SQL
    fi
  fi
}

process_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "$0: running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
      *.sql) echo "$0: running $f"; psql_cmd --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_cmd --dbname "$POSTGRES_DB" ;;
      *) [ "$f" = '/docker-entrypoint-initdb.d/*' ] || echo "$0: ignoring $f" ;;
    esac
  done
}

# A first argument that looks like a flag means: run the server with these flags.
if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && ! want_help "$@"; then
  setup_env
  create_directories
  if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
    verify_minimum_env
    ls /docker-entrypoint-initdb.d/ >/dev/null
    init_database_dir
    setup_hba_conf
    temp_server_start
    setup_db
    process_init_files
    temp_server_stop
    echo
    echo 'PostgreSQL init process complete; ready for start up.'
    echo
  else
    echo
    echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    echo
  fi
fi

exec "$@"
