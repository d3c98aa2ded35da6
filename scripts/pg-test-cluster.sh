#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for lrlab's tests and for trying lrlab on PostgreSQL.
#
#   scripts/pg-test-cluster.sh start DIR   # creates the cluster in DIR (new or empty), starts
#                                          # it on a free loopback port, prints its URL
#   scripts/pg-test-cluster.sh stop DIR    # stops it and removes DIR
#
# The URL names the `postgres` database of user `postgres` (trust authentication, loopback
# only), e.g. postgres://postgres@127.0.0.1:54321/postgres. The tests create and drop their
# own databases on it when LRLAB_TEST_POSTGRES_URL is set to it; for a server by hand:
#   createdb -h 127.0.0.1 -p PORT -U postgres lrlab && lrlab serve --db postgres://postgres@127.0.0.1:PORT/lrlab
# Durability is off (fsync=off): a test cluster, never a real one. PostgreSQL refuses to run
# as root, so under root the cluster is owned by and runs as user `postgres`.
set -euo pipefail

usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2

bindir() {
  if [ -n "${LRLAB_TEST_PG_BIN:-}" ]; then echo "$LRLAB_TEST_PG_BIN"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
  if command -v pg_config >/dev/null; then pg_config --bindir; return; fi
  echo "no PostgreSQL binaries found: install the postgresql package or set LRLAB_TEST_PG_BIN" >&2
  exit 1
}

# Runs a command as the cluster's owner: user postgres under root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case $cmd in
  start)
    bin=$(bindir)
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || { echo "$dir is not empty" >&2; exit 1; }
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
      chown -R postgres:postgres "$dir"
      runuser -u postgres -- test -x "$dir" || {
        echo "user postgres cannot reach $dir (a parent directory is private); use e.g. DIR=\$(mktemp -d)" >&2
        exit 1
      }
    fi
    (cd "$dir" && as_owner "$bin/initdb" -U postgres --auth=trust -E UTF8 --no-sync \
      -D "$dir/data" >"$dir/initdb.log" 2>&1) || { cat "$dir/initdb.log" >&2; exit 1; }
    # A random free port; another process may take it first, so try a few.
    for _ in 1 2 3 4 5 6 7 8; do
      port=$((20000 + RANDOM % 40000))
      port_is_free "$port" || continue
      if (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
          -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
          start >/dev/null); then
        echo "postgres://postgres@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    echo "could not start PostgreSQL; see $dir/server.log" >&2
    exit 1
    ;;
  stop)
    [ -d "$dir/data" ] || { echo "$dir holds no cluster" >&2; exit 1; }
    bin=$(bindir)
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null) || true
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
