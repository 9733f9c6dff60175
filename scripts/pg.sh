#!/usr/bin/env bash
# Private PostGIS cluster for this checkout.
#   scripts/pg.sh start            initdb (once) and start the cluster; idempotent
#   scripts/pg.sh stop             stop it
#   scripts/pg.sh url DBNAME       print the SQLAlchemy URL of DBNAME on the private cluster
#   scripts/pg.sh ensure URL       create the database of URL if missing, with PostGIS
#
# The cluster lives in a per-checkout folder under /var/tmp (linked from instance/pg), so the
# `postgres` user can reach it even when the clone sits under /root; it listens on a unix socket
# only, so it never collides with a server on port 5432.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
key=$(printf '%s' "$here" | sha1sum | cut -c1-10)
base=/var/tmp/sanquan-$key
data=$base/data
sock=$base/run
port=${SANQUAN_PG_PORT:-5439}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  mkdir -p "$base" "$sock"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$base" "$sock"; chmod 755 "$base"; fi
  mkdir -p "$here/instance"; ln -sfn "$base" "$here/instance/pg"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = $port
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
fsync = ${SANQUAN_PG_FSYNC:-on}
timezone = 'Asia/Shanghai'
CONF
  fi
  if ! as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 start >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) as_pg "$bindir/pg_ctl" -D "$data" -m fast stop ;;
  url) echo "postgresql+psycopg://postgres@/${2:?dbname}?host=$sock&port=$port" ;;
  ensure)
    url=${2:?url}
    # psql understands the URL once the SQLAlchemy driver suffix is dropped.
    plain=${url/postgresql+psycopg:/postgresql:}
    db=$(python3 -c 'import sys,urllib.parse as u; print(u.urlsplit(sys.argv[1]).path.lstrip("/"))' "$plain")
    admin=${plain/\/$db/\/postgres}
    if ! psql "$admin" -Atqc "select 1 from pg_database where datname='$db'" | grep -q 1; then
      psql "$admin" -qc "create database \"$db\""
    fi
    psql "$plain" -qc "create extension if not exists postgis" >/dev/null
    ;;
  *) echo "usage: $0 start|stop|url DB|ensure URL" >&2; exit 2 ;;
esac
