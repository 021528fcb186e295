#!/bin/bash
# A small stand-in for the official postgres image's entrypoint: honours POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB on first start, passes `-c key=value` arguments to the server.
set -euo pipefail

# `docker run IMAGE -c fsync=off` means `postgres -c fsync=off`, as in the official image.
if [[ "${1:-}" == -* ]]; then set -- postgres "$@"; fi
if [[ "$1" != postgres ]]; then exec "$@"; fi

# Root only prepares directories, then re-runs this script as postgres (the server refuses root).
if [[ "$(id -u)" == 0 ]]; then
  install -d -o postgres -g postgres -m 700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

# First start only: the data directory lives in the container, so `docker stop` + `docker start` keeps it.
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  initdb --pgdata="$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  # Password logins from any address (the official image does the same).
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [[ "$db" != postgres ]]; then
    # Single-user mode: nothing listens on TCP yet, so readiness probes only succeed once this is done.
    printf 'CREATE DATABASE "%s";\n' "${db//\"/\"\"}" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "entrypoint: initialised $PGDATA (user $user, database $db)"
fi

exec "$@"
