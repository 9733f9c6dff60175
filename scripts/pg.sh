#!/usr/bin/env bash
# Private PostGIS cluster for this checkout.
#   scripts/pg.sh start            initdb (once) and start the cluster; idempotent
#   scripts/pg.sh stop             stop it
#   scripts/pg.sh url DBNAME [app|owner|admin]
#                                  print the SQLAlchemy URL of DBNAME on the private cluster, as
#                                  the app role (default), the owner role or the superuser
#   scripts/pg.sh archive-on       WAL archiving into $base/wal (wal_level replica, archive_mode
#                                  on): idempotent; restarts the cluster only when archive_mode
#                                  was off (it needs a restart)
#   scripts/pg.sh backup           archive-on, then a base backup (pg_basebackup, plain, WAL
#                                  streamed) into $base/backups/<UTC stamp>; prints its folder
#   scripts/pg.sh restore TIME [DIR]
#                                  point-in-time recovery to TIME (e.g. '2026-11-29 14:05:00+00')
#                                  from the latest base backup taken before it and the WAL
#                                  archive, into a NEW data folder (default $base/restore-<stamp>)
#                                  started on its own socket and port (SANQUAN_RESTORE_PORT,
#                                  default 5440); prints its URL.  The running cluster is not
#                                  touched: check the restored register, then switch over or copy
#                                  what you need.  `scripts/pg.sh restore-stop DIR` stops it.
#   scripts/pg.sh standby          a hot standby of this cluster (streaming replication) as a
#                                  second private cluster (port SANQUAN_PG_STANDBY_PORT, default
#                                  5440, its own socket folder): pg_basebackup -R once, then
#                                  started; idempotent.  `standby-stop` stops it, `standby-drop`
#                                  removes it (a new base backup next time)
#   scripts/pg.sh standby-url DBNAME [app|owner|admin]
#                                  the URL of DBNAME on the standby (read-only)
#   scripts/pg.sh ensure URL       as a superuser: create the two roles if missing, the database
#                                  of URL if missing (owned by the owner role) with PostGIS, and
#                                  hand any table a superuser made earlier to the owner role
#
# Least privilege (issue 11): migrations run as the owner role (SANQUAN_OWNER_ROLE, default
# sanquan_owner), the app connects as the app role (the user of DATABASE_URL, default
# sanquan_app) that owns nothing, is no superuser and gets only the DML the migrations grant.
# The superuser used here is PG_ADMIN_URL if set, else the URL's server as user `postgres`.
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

sdata=$base/standby
ssock=$base/run-standby
sport=${SANQUAN_PG_STANDBY_PORT:-5440}

# The primary allows streaming to a local standby as it is: initdb's trust covers
# `local replication all`, wal_level is replica and max_wal_senders 10 by default.
# A physical slot keeps the WAL a stopped standby still needs (at most 8 GB: beyond that the
# slot is lost and the standby is rebuilt from a new base backup the next time).
slot=sanquan_standby
psql_primary() { psql "postgresql://postgres@/postgres?host=$sock&port=$port" -Atq "$@"; }
standby_drop() {
  if [ -f "$sdata/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$sdata" status >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" -D "$sdata" -m fast stop >/dev/null
  fi
  rm -rf "$sdata"
  psql_primary -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots
                   WHERE slot_name = '$slot' AND NOT active" >/dev/null
}
standby() {
  start
  mkdir -p "$ssock"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$ssock"; fi
  status=$(psql_primary -c "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$slot'")
  if [ -f "$sdata/PG_VERSION" ] && { [ -z "$status" ] || [ "$status" = lost ]; }; then
    standby_drop  # made without a slot, or its WAL is gone: a new base backup
  fi
  if [ ! -f "$sdata/PG_VERSION" ]; then
    psql_primary -c "ALTER SYSTEM SET max_slot_wal_keep_size = '8GB'" -c "SELECT pg_reload_conf()" \
      >/dev/null
    psql_primary -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots
                     WHERE slot_name = '$slot' AND NOT active" >/dev/null
    as_pg "$bindir/pg_basebackup" -h "$sock" -p "$port" -U postgres -D "$sdata" -R -X stream \
      -c fast -C -S "$slot"
    cat >> "$sdata/postgresql.conf" <<CONF
# standby of $data
port = $sport
unix_socket_directories = '$ssock'
hot_standby = on
hot_standby_feedback = on
shared_buffers = 256MB
CONF
  fi
  if ! as_pg "$bindir/pg_ctl" -D "$sdata" status >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" -D "$sdata" -l "$base/standby.log" -w -t 120 start >/dev/null
  fi
}

owner_role=${SANQUAN_OWNER_ROLE:-sanquan_owner}
app_role=${SANQUAN_APP_ROLE:-sanquan_app}

# url_part URL user|db|with-user NAME|with-db NAME
url_part() {
  python3 - "$@" <<'PY'
import sys, urllib.parse as u
url, what = sys.argv[1], sys.argv[2]
p = u.urlsplit(url)
host = p.netloc.rsplit("@", 1)[-1]
if what == "user":
    print(u.unquote(p.username or ""))
elif what == "db":
    print(p.path.lstrip("/"))
elif what == "with-user":
    print(u.urlunsplit(p._replace(netloc=f"{sys.argv[3]}@{host}")))
elif what == "with-db":
    print(u.urlunsplit(p._replace(path="/" + sys.argv[3])))
PY
}

roles() {  # idempotent; $1 = a superuser libpq URL
  psql "$1" -v ON_ERROR_STOP=1 -q <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$owner_role') THEN
    CREATE ROLE $owner_role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$app_role') THEN
    CREATE ROLE $app_role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
END \$\$;
ALTER ROLE $app_role NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
ALTER ROLE $owner_role NOSUPERUSER NOREPLICATION NOBYPASSRLS;
SQL
}

admin_local() { echo "postgresql://postgres@/postgres?host=$sock&port=$port"; }
wal=$base/wal
backups=$base/backups

archive_on() {
  start
  as_pg mkdir -p "$wal" "$backups"
  local mode
  mode=$(psql "$(admin_local)" -Atqc "SHOW archive_mode")
  psql "$(admin_local)" -q -v ON_ERROR_STOP=1 <<SQL
ALTER SYSTEM SET wal_level = 'replica';
ALTER SYSTEM SET archive_mode = 'on';
ALTER SYSTEM SET archive_command = 'test ! -f $wal/%f && cp %p $wal/%f';
ALTER SYSTEM SET archive_timeout = '60s';
SELECT pg_reload_conf() \gset
SQL
  if [ "$mode" != "on" ]; then
    echo "archive_mode was $mode: restarting the cluster once" >&2
    as_pg "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -m fast -w -t 60 restart >/dev/null
  fi
}

backup() {
  archive_on
  local stamp dest
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  dest=$backups/$stamp
  as_pg "$bindir/pg_basebackup" -h "$sock" -p "$port" -U postgres -D "$dest" -Fp -X stream \
    -c fast -l "sanquan $stamp" >/dev/null
  # the backup's end is archived at once (recovery to a time just after it needs it)
  psql "$(admin_local)" -Atqc "SELECT pg_switch_wal()" >/dev/null
  echo "$dest"
}

restore() {
  local target=${1:?TARGET_TIME, e.g. '2026-11-29 14:05:00+00'}
  local rport=${SANQUAN_RESTORE_PORT:-5440}
  local dest=${2:-$base/restore-$(date -u +%Y%m%dT%H%M%SZ)}
  local tsec chosen="" b
  tsec=$(date -d "$target" +%s) || { echo "restore: cannot read TARGET_TIME '$target'" >&2; exit 2; }
  if [ "$tsec" -ge "$(date +%s)" ]; then
    echo "restore: TARGET_TIME '$target' is not in the past" >&2; exit 2
  fi
  # Recovery to a time stops at the first commit after it: make one now (txid_current() gives
  # the transaction an id, so its commit is logged), then archive the WAL up to here.
  if psql "$(admin_local)" -Atqc "SELECT txid_current()" >/dev/null 2>&1; then
    psql "$(admin_local)" -Atqc "SELECT pg_switch_wal()" >/dev/null
  fi
  for b in $(ls -1 "$backups" 2>/dev/null | sort); do
    local started
    started=$(sed -n 's/^START TIME: //p' "$backups/$b/backup_label" 2>/dev/null)
    [ -n "$started" ] || continue
    if [ "$(date -d "$started" +%s)" -lt "$tsec" ]; then chosen=$b; fi
  done
  if [ -z "$chosen" ]; then
    echo "restore: no base backup taken before $target in $backups (run make backup)" >&2
    exit 1
  fi
  if [ -e "$dest" ]; then echo "restore: $dest exists" >&2; exit 1; fi
  as_pg mkdir -p "$dest"
  as_pg cp -a "$backups/$chosen/." "$dest/data/"
  as_pg mkdir -p "$dest/run"
  as_pg chmod 700 "$dest/data"
  as_pg rm -f "$dest/data/postmaster.pid"
  as_pg touch "$dest/data/recovery.signal"
  as_pg tee -a "$dest/data/postgresql.auto.conf" >/dev/null <<CONF
# point-in-time recovery (scripts/pg.sh restore) from backup $chosen
restore_command = 'cp $wal/%f %p'
recovery_target_time = '$target'
recovery_target_action = 'promote'
archive_mode = 'off'
port = $rport
unix_socket_directories = '$dest/run'
shared_buffers = '128MB'
CONF
  as_pg "$bindir/pg_ctl" -D "$dest/data" -l "$dest/server.log" -w -t 300 start >/dev/null || true
  # promoted when the target is reached; wait until it accepts writes (recovery over)
  for _ in $(seq 1 300); do
    if ! as_pg "$bindir/pg_ctl" -D "$dest/data" status >/dev/null 2>&1; then break; fi
    if [ "$(psql "postgresql://postgres@/postgres?host=$dest/run&port=$rport" -Atqc \
          "SELECT pg_is_in_recovery()" 2>/dev/null)" = "f" ]; then
      echo "postgresql+psycopg://postgres@/DBNAME?host=$dest/run&port=$rport"
      echo "restored from $chosen to $target into $dest" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "restore: recovery did not finish; see $dest/server.log" >&2
  exit 1
}

case "${1:-}" in
  archive-on) archive_on ;;
  backup) backup ;;
  restore) restore "${2:-}" "${3:-}" ;;
  restore-stop)
    as_pg "$bindir/pg_ctl" -D "${2:?DIR}/data" -m fast stop >/dev/null
    rm -rf "${2:?}"
    ;;
  start)
    start
    roles "postgresql://postgres@/postgres?host=$sock&port=$port"
    ;;
  stop) as_pg "$bindir/pg_ctl" -D "$data" -m fast stop ;;
  standby) standby ;;
  standby-stop)
    if [ -f "$sdata/PG_VERSION" ]; then as_pg "$bindir/pg_ctl" -D "$sdata" -m fast stop; fi ;;
  standby-drop) standby_drop ;;
  standby-url)
    case "${3:-app}" in
      app) who=$app_role ;; owner) who=$owner_role ;; admin) who=postgres ;;
      *) echo "standby-url: role is app, owner or admin" >&2; exit 2 ;;
    esac
    echo "postgresql+psycopg://$who@/${2:?dbname}?host=$ssock&port=$sport" ;;
  url)
    case "${3:-app}" in
      app) who=$app_role ;; owner) who=$owner_role ;; admin) who=postgres ;;
      *) echo "url: role is app, owner or admin" >&2; exit 2 ;;
    esac
    echo "postgresql+psycopg://$who@/${2:?dbname}?host=$sock&port=$port" ;;
  ensure)
    url=${2:?url}
    # psql understands the URL once the SQLAlchemy driver suffix is dropped.
    plain=${url/postgresql+psycopg:/postgresql:}
    db=$(url_part "$plain" db)
    admin_db=${PG_ADMIN_URL:-$(url_part "$(url_part "$plain" with-user postgres)" with-db "$db")}
    admin_db=${admin_db/postgresql+psycopg:/postgresql:}
    admin=$(url_part "$admin_db" with-db postgres)
    user=$(url_part "$plain" user)
    if [ "$user" = "$app_role" ]; then roles "$admin"; fi
    if ! psql "$admin" -Atqc "select 1 from pg_database where datname='$db'" | grep -q 1; then
      psql "$admin" -qc "create database \"$db\""
    fi
    psql "$admin_db" -qc "create extension if not exists postgis" >/dev/null
    if [ "$user" = "$app_role" ]; then
      # The owner role owns the database (so it may create in schema public) and every table,
      # sequence, view and function a superuser made here before roles were split.
      psql "$admin_db" -v ON_ERROR_STOP=1 -q <<SQL
ALTER DATABASE "$db" OWNER TO $owner_role;
DO \$\$ DECLARE o record; BEGIN
  FOR o IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r','p','v','m','S')
             AND pg_get_userbyid(c.relowner) = 'postgres'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype = 'e')
             AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype IN ('a','i')))
  LOOP EXECUTE format('ALTER TABLE %s OWNER TO $owner_role', o.name); END LOOP;
  FOR o IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) = 'postgres'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e')
  LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO $owner_role', o.name); END LOOP;
END \$\$;
SQL
    fi
    ;;
  *) echo "usage: $0 start|stop|url DB|ensure URL|archive-on|backup|restore TIME [DIR]|restore-stop DIR|standby|standby-stop|standby-drop|standby-url DB" >&2; exit 2 ;;
esac
