#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: listens on 127.0.0.1 only, trusts every
# local connection, keeps its data in a temporary directory that is removed when it stops,
# and runs with fsync off (the data is thrown away anyway).
#
# Run it by hand:
#   eval "$(scripts/postgres.sh start)"   # exports TENURE_TEST_DATABASE_URL and TENURE_PG_DIR
#   .venv/bin/python -m pytest
#   scripts/postgres.sh stop              # stops the server in $TENURE_PG_DIR, removes it
#
# ./test sources this file and calls pg_ensure_installed, pg_start and pg_stop itself.

# Run a command as root: directly when we are root, through sudo when it asks no password.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        echo "error: '$*' needs root; run it yourself or run this as root" >&2
        return 1
    fi
}

# apt-get update costs seconds, so do it at most once per run.
_APT_UPDATED=0
apt_install() {
    if [[ $_APT_UPDATED -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        _APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

# The directory holding initdb and pg_ctl, newest version first; fails when there is none.
pg_bindir() {
    local dir
    if command -v pg_config >/dev/null; then
        # pg_config also comes with libpq-dev, which has no server: check for initdb.
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    fi
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -rn); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

pg_ensure_installed() {
    if ! pg_bindir >/dev/null; then
        echo "PostgreSQL server not found; installing Debian's postgresql package" >&2
        apt_install --no-install-recommends postgresql
    fi
    pg_bindir >/dev/null || { echo "error: no initdb after installing postgresql" >&2; return 1; }
}

# initdb and the server refuse to run as root: as root they run as the postgres user.
_pg_user() {
    if [[ $(id -u) -ne 0 ]]; then
        id -un
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    else
        echo nobody
    fi
}

_as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$(_pg_user)" -- "$@"
    else
        "$@"
    fi
}

_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a new server; sets PG_DIR, PG_PORT and PG_URL (a SQLAlchemy URL to the
# "postgres" database as the superuser "postgres").
pg_start() {
    local bindir attempt
    bindir=$(pg_bindir)
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tenure-pg.XXXXXX")
    chmod 755 "$PG_DIR"
    if [[ $(id -u) -eq 0 ]]; then
        chown "$(_pg_user)" "$PG_DIR"
    fi
    if ! _as_pg "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale \
        --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        cat "$PG_DIR/initdb.log" >&2
        return 1
    fi
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF
# Throwaway test server: loopback only, socket in its own directory, no durability.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
    # A free port can be taken between asking and binding: try a few.
    for attempt in 1 2 3; do
        PG_PORT=$(_free_port)
        if _as_pg "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -o "-p $PG_PORT" \
            -w -t 60 start >/dev/null; then
            PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
            return 0
        fi
        echo "PostgreSQL did not start on port $PG_PORT (attempt $attempt)" >&2
    done
    cat "$PG_DIR/server.log" >&2
    return 1
}

# Stops the server started by pg_start (or the one in $1) and removes its directory.
pg_stop() {
    local dir=${1:-${PG_DIR:-}}
    [[ -n $dir && -d $dir ]] || return 0
    if [[ -f $dir/data/postmaster.pid ]]; then
        _as_pg "$(pg_bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case ${1:-} in
        start)
            pg_ensure_installed
            pg_start
            echo "export TENURE_TEST_DATABASE_URL=$PG_URL"
            echo "export TENURE_PG_DIR=$PG_DIR"
            ;;
        stop)
            pg_stop "${2:-${TENURE_PG_DIR:-}}"
            ;;
        *)
            echo "usage: $0 start | stop [DIR]" >&2
            exit 2
            ;;
    esac
fi
