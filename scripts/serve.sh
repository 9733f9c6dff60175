#!/usr/bin/env bash
# Serve the app with gunicorn, never as root (issue 12).
#   scripts/serve.sh HOST PORT [STREAM_PORT]
# Beside gunicorn it starts the market's live-bidding stream service (SSE, asyncio; see README)
# on STREAM_PORT (default PORT + 1), as the same user, and stops it when gunicorn stops.
# As root: the unprivileged user $SANQUAN_USER (default `sanquan`) is created if missing, the
# secret key and the writable folders (uploads, print packages, PDF cache) are given to it alone
# (0600 / 0700), and gunicorn runs as that user.  As any other user: gunicorn runs as you.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
host=${1:-127.0.0.1}
port=${2:-5000}
stream_port=${3:-$((port + 1))}
export MARKET_STREAM_URL=${MARKET_STREAM_URL:-http://$host:$stream_port}
app_user=${SANQUAN_USER:-sanquan}
cd "$here"
gunicorn=(.venv/bin/gunicorn -c gunicorn.conf.py --bind "$host:$port" --workers 2 --threads 4 wsgi:app)

serve() {  # serve.sh's two services, each with the given prefix (nothing, or runuser …)
  "$@" "${stream[@]}" & local stream_pid=$!
  trap 'kill $stream_pid 2>/dev/null' EXIT INT TERM
  "$@" "${gunicorn[@]}"
}

if [ "$(id -u)" != 0 ]; then
  stream=(.venv/bin/python -m app.market.stream --host "$host" --port "$stream_port")
  serve
  exit
fi

if ! id -u "$app_user" >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$app_user"
fi
mkdir -p instance
if [ -z "${SECRET_KEY:-}" ] && [ ! -s instance/secret_key ]; then
  (umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > instance/secret_key)
fi
for d in instance/uploads instance/prints instance/pdf-cache instance/run; do
  mkdir -p "$d"
  chown -R "$app_user:" "$d"
  chmod 700 "$d"
done
if [ -f instance/secret_key ]; then
  chown "$app_user:" instance/secret_key
  chmod 600 instance/secret_key
fi
# The code must be readable by the app user (a clone under /root, mode 700, is not).
if ! runuser -u "$app_user" -- test -r "$here/wsgi.py"; then
  echo "serve.sh: $app_user cannot read $here; clone into a folder every user can traverse" \
       "(e.g. /srv/sanquan) or grant it read access." >&2
  exit 1
fi
py=(.venv/bin/python)
if ! runuser -u "$app_user" -- "$here/.venv/bin/python" -c '' 2>/dev/null; then
  # The venv's interpreter lives where the app user cannot go (e.g. pyenv under /root): run the
  # same packages with the system's interpreter of the same minor version, through a small
  # venv whose only content is a .pth line naming the project venv's site-packages.
  ver=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' .venv/pyvenv.cfg)
  sys_py=/usr/bin/python$ver
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  runner=/var/tmp/sanquan-run-$(printf '%s' "$here" | sha1sum | cut -c1-10)
  if [ ! -x "$sys_py" ]; then
    echo "serve.sh: $app_user cannot run .venv/bin/python and there is no $sys_py" >&2
    exit 1
  fi
  if [ ! -x "$runner/bin/python" ]; then
    "$sys_py" -m venv --without-pip "$runner"
  fi
  echo "$site" > "$runner/lib/python$ver/site-packages/sanquan-venv.pth"
  chmod -R a+rX "$runner"
  py=("$runner/bin/python")
fi
gunicorn=("${py[@]}" -m gunicorn "${gunicorn[@]:1}")
stream=("${py[@]}" -m app.market.stream --host "$host" --port "$stream_port")
serve runuser -u "$app_user" -- env HOME="$here/instance/run" MARKET_STREAM_URL="$MARKET_STREAM_URL"
