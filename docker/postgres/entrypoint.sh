#!/usr/bin/env bash
# Creates the cluster in $PGDATA on first start (user POSTGRES_USER with
# POSTGRES_PASSWORD, database POSTGRES_DB), then runs PostgreSQL in the foreground.
set -euo pipefail

data=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

if [[ $(id -u) -eq 0 ]]; then
  mkdir -p "$data" /run/postgresql
  chown postgres:postgres "$data" /run/postgresql
  chmod 700 "$data"
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" "$@"
fi

if [[ ! -s $data/PG_VERSION ]]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$data" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  if [[ $database != postgres ]]; then
    pg_ctl -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
    createdb -h /run/postgresql -U "$user" "$database"
    pg_ctl -D "$data" -m fast -w stop >/dev/null
  fi
  echo "postgres-entrypoint: created the cluster in $data (user $user, database $database)"
fi

if [[ ${1:-} == postgres ]]; then
  shift
  exec postgres -D "$data" -c listen_addresses='*' "$@"
fi
exec "$@"
