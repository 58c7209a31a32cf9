#!/usr/bin/env bash
# Serve the app with gunicorn on $BIND (default 127.0.0.1:$PORT). Storage, in order of preference:
# $REDIS_URL; else a redis-server of our own under ./var/ (unix socket, append-only file);
# else the embedded in-process store (one worker, nothing survives a restart).
# Ctrl-C stops everything this script started. The exit code is gunicorn's: non-zero when the
# app could not start (a bad setting: one line naming it; the address taken: said at once).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
WORKERS="${WORKERS:-2}"
export PORT WORKERS
export GENMB_ENV="${GENMB_ENV:-development}"
mkdir -p var
chmod 700 var
# Before anything is started or written: the address must be free (else another server,
# perhaps another `make run`, would answer in our place), and BIND/PORT valid.
BIND="$(.venv/bin/python -m deploy.listen free)"  # prints the address when it is free

if [ -z "${SECRET_KEY:-}" ]; then
  # One secret for every worker, kept across restarts so sessions survive them.
  [ -s var/secret_key ] || (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' > var/secret_key)
  SECRET_KEY="$(cat var/secret_key)"
  export SECRET_KEY
fi

redis_pid=""
redis_dir=""
wrote_env=""
ready_file=""
cleanup() {
  [ -z "$ready_file" ] || rm -f "$ready_file"
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  # Only our own: a refused second `make run` must not take the running one's away.
  [ -z "$wrote_env" ] || rm -f var/run.env
  [ -z "$redis_dir" ] || [ "$redis_dir" = "$PWD/var" ] || rm -rf "$redis_dir"
}
trap cleanup EXIT
trap 'exit 0' INT TERM  # until gunicorn runs (below)

ping_socket() {
  .venv/bin/python -c 'import sys, redis; redis.Redis(unix_socket_path=sys.argv[1], socket_timeout=0.5).ping()' "$1" 2>/dev/null
}

if [ -n "${REDIS_URL:-}" ] && [ "${REDIS_URL#memory://}" != "$REDIS_URL" ]; then
  # The embedded store lives in one process: a second worker would be a second store.
  echo "WARNING: REDIS_URL=memory:// is the embedded in-process store: one worker only," >&2
  echo "WARNING: and nothing survives a restart." >&2
  WORKERS=1
elif [ -n "${REDIS_URL:-}" ]; then
  echo "storage: REDIS_URL"
elif command -v redis-server >/dev/null 2>&1; then
  redis_dir="$PWD/var"
  sock="$redis_dir/redis.sock"
  if [ "${#sock}" -gt 100 ]; then  # unix socket paths are limited to ~107 bytes
    redis_dir="$(mktemp -d /tmp/genmb-redis.XXXXXX)"
    sock="$redis_dir/redis.sock"
  fi
  if [ -S "$sock" ] && ping_socket "$sock"; then
    echo "error: a redis-server from another 'make run' is already serving $sock" >&2
    exit 1
  fi
  rm -f "$sock"
  # No TCP port at all (--port 0): nothing can collide with a server someone else runs.
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
    --dir "$PWD/var" --appendonly yes --appendfsync everysec --save "" \
    --logfile "$PWD/var/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 50); do ping_socket "$sock" && break; sleep 0.1; done
  ping_socket "$sock" || { echo "error: redis-server did not start; see var/redis.log" >&2; exit 1; }
  export REDIS_URL="unix://$sock"
  echo "storage: redis-server (append-only) at $sock, data in var/"
else
  echo "WARNING: no REDIS_URL and no redis-server on PATH: using the embedded in-process store." >&2
  echo "WARNING: one worker only, and nothing survives a restart." >&2
  export REDIS_URL="memory://"
  WORKERS=1
fi

store_note=""
[ "$REDIS_URL" != "memory://" ] || store_note=" (embedded store: exactly one)"
# A single sync gunicorn on its own: a client that sends a body slowly holds a worker until
# the timeout. Fine on the loopback; anywhere else, put it behind the proxy (docs/deploy.md).
# BIND, PORT and WORKERS reach gunicorn through deploy/gunicorn.conf.py, which checks every
# setting before any worker forks (a bad one: one line, exit 2).
# Our gunicorn writes its pid in $ready_file once it holds the address (when_ready): what
# answers there before that may be another server that took the address since the check
# above (a second `make run` started at the same moment), never a reason to say "serving".
ready_file="$(mktemp "$PWD/var/ready.XXXXXX")"
GENMB_READY_FILE="$ready_file" .venv/bin/gunicorn -c deploy/gunicorn.conf.py 'app:create_app()' &
gunicorn_pid=$!
# A TERM or INT sent to this script alone (a supervisor, `timeout`) reaches gunicorn too.
trap 'kill -TERM "$gunicorn_pid" 2>/dev/null || true' INT TERM
# "serving" only once our gunicorn holds the address and answers there; if it ends first,
# its exit code is ours.
if .venv/bin/python -m deploy.listen wait "$gunicorn_pid" "$ready_file"; then
  # For the operator CLI in another terminal: set -a; . var/run.env; set +a
  (umask 077 && printf 'REDIS_URL=%s\nSECRET_KEY=%s\nGENMB_ENV=%s\n' \
    "$REDIS_URL" "$SECRET_KEY" "$GENMB_ENV" > var/run.env)
  wrote_env=1
  case "$BIND" in
    unix:*) where="$BIND" ;;
    *) where="http://$BIND" ;;
  esac
  echo "serving on $where with $WORKERS worker(s)$store_note; Ctrl-C to stop"
  echo "note: gunicorn alone is for local use; exposed to a network it must sit behind the nginx proxy (make stack), which buffers request bodies (docs/deploy.md)"
else
  kill -TERM "$gunicorn_pid" 2>/dev/null || true
fi
status=0
wait "$gunicorn_pid" || status=$?
# `wait` returns early when a trapped signal arrives: wait again for gunicorn to finish.
if kill -0 "$gunicorn_pid" 2>/dev/null; then
  status=0
  wait "$gunicorn_pid" || status=$?
fi
# 2 is deploy/gunicorn.conf.py's refusal (a bad setting, METRICS_BIND taken): its one line
# has said why, and a second would only repeat that it failed.
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
  echo "error: gunicorn exited with code $status" >&2
fi
exit "$status"
