#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests (storage contract,
# end-to-end tests on PostgreSQL, replica failover) and prints the
# `export TRUSTCA_TEST_POSTGRES=...` line to eval. PostgreSQL refuses to run
# as root, so the cluster belongs to an unprivileged user in a temp dir.
# Usage: eval "$(bash .ci/postgres.sh start)"; bash .ci/postgres.sh stop DIR
set -euo pipefail

bin_dir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  echo "$d"
}

case "${1:-start}" in
  start)
    BIN=$(bin_dir)
    USER_NAME=trustca-pg
    if [ "$(id -u)" = 0 ]; then
      id "$USER_NAME" >/dev/null 2>&1 || useradd --system --no-create-home "$USER_NAME"
      RUN=(runuser -u "$USER_NAME" --)
    else
      RUN=()
    fi
    DIR=$(mktemp -d /tmp/trustca-pg.XXXXXX)
    chmod 755 "$DIR"
    [ "$(id -u)" = 0 ] && chown "$USER_NAME" "$DIR"
    PORT=${TRUSTCA_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    "${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -U trustca --auth=trust --encoding=UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    # fsync and synchronous_commit stay on: the tests measure and rely on
    # durable commits. Enough connections for several replicas' pools.
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on -c synchronous_commit=on" \
      start >&2 || { cat "$DIR/server.log" >&2; exit 1; }
    echo "export TRUSTCA_TEST_POSTGRES=postgres://trustca@127.0.0.1:$PORT"
    echo "export TRUSTCA_PG_DIR=$DIR"
    ;;
  stop)
    BIN=$(bin_dir)
    DIR=${2:?usage: postgres.sh stop DIR}
    if [ "$(id -u)" = 0 ]; then
      runuser -u trustca-pg -- "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    else
      "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    fi
    rm -rf "$DIR"
    ;;
esac
