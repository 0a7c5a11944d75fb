#!/usr/bin/env bash
# The local servers Shippy needs, on 127.0.0.1, with all data under one ignored folder of the checkout.
#
#   scripts/servers.sh start    install what is missing, start PostgreSQL, nats-server and a MongoDB-compatible
#                               server (mongod when on PATH, else secantusdb from PyPI), wait until each answers,
#                               and write their URLs to .local/servers/env. PostgreSQL takes TLS only, with a
#                               certificate of a development authority (scripts/certificates.sh, in tls/), and
#                               so does NATS (with a password): SHIPPY_NATS_CA is the authority's file. With
#                               SHIPPY_MONGO_TLS=1 (`make up` sets it) MongoDB takes TLS only too; the tests'
#                               stays plaintext on 127.0.0.1 (secantusdb's TLS handshakes are slow, one at a time)
#   scripts/servers.sh stop     stop the processes that `start` started (by the PIDs it recorded), nothing else
#   scripts/servers.sh status   say what is running
#   scripts/servers.sh install  only install what is missing
#   scripts/servers.sh purge    stop, then delete the state folder and its data (tests use it)
#   scripts/servers.sh stop-server NAME / start-server NAME
#                               stop or start one server of a running set (postgres, nats, mongo), same port
#                               and data: the fault campaign (scripts/chaos.py) restarts them so
#
# Ports are free ones unless SHIPPY_MONGO_PORT, SHIPPY_POSTGRES_PORT or SHIPPY_NATS_PORT say otherwise.
# SHIPPY_SERVERS_DIR moves the state folder (default: .local/servers).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${SHIPPY_SERVERS_DIR:-$root/.local/servers}
venv=$root/.local/venv
# What the MongoDB-compatible server's command line holds, to tell it from another program with its old PID.
mongo_pattern=$(if command -v mongod >/dev/null; then echo mongod; else echo secantusd; fi)

# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

log() { printf 'servers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pg_bin() { find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1; }

install_missing() {
    "$root/scripts/install.sh"
}

# The running postmaster of our cluster, from PostgreSQL's own postmaster.pid (it outlives our records when
# a run was cut short), or nothing.
postgres_pid() {
    local file
    [ -f "$state/postgres.root" ] || return 0
    file=$(pg_root)/data/postmaster.pid
    if recorded_alive "$file" postgres; then head -n 1 "$file"; fi
}

# The PostgreSQL cluster must be reachable by the postgres user; a checkout inside a private folder
# (mktemp -d) is not, so the cluster then lives in a folder of its own under /tmp, recorded in the state.
pg_root() {
    if [ -f "$state/postgres.root" ]; then cat "$state/postgres.root"; return; fi
    local dir=$state/postgres
    if [ "$(id -u)" -eq 0 ]; then
        mkdir -p "$dir"
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            rmdir "$dir"
            dir=$(mktemp -d /tmp/shippy-postgres.XXXXXX)
            chown postgres: "$dir"
        fi
    fi
    mkdir -p "$dir"
    echo "$dir" >"$state/postgres.root"
    echo "$dir"
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
    local port=$1 dir bin
    dir=$(pg_root)
    bin=$(pg_bin)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        openssl rand -hex 16 >"$state/postgres.password" 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(16))' >"$state/postgres.password"
        chmod 600 "$state/postgres.password"
        install -m 600 "$state/postgres.password" "$dir/pwfile"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/pwfile"
        as_pg "$bin/initdb" -D "$dir/data" -U shippy --pwfile="$dir/pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        rm -f "$dir/pwfile"
    fi
    # TLS only over TCP, with a certificate of the development authority for 127.0.0.1: clients verify it
    # (sslmode=verify-full), and a plaintext client finds no pg_hba.conf entry. The socket stays for psql here.
    "$root/scripts/certificates.sh" "$state/tls" postgres
    install -m 600 "$state/tls/postgres.pem" "$dir/server.pem"
    install -m 600 "$state/tls/postgres-key.pem" "$dir/server-key.pem"
    printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n' >"$dir/pg_hba.conf"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/server.pem" "$dir/server-key.pem" "$dir/pg_hba.conf"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server-key.pem -c hba_file=$dir/pg_hba.conf" \
        start >/dev/null || { tail -n 20 "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
    head -n 1 "$dir/data/postmaster.pid" >"$state/postgres.pid"
    if ! as_pg psql -h "$dir" -p "$port" -U shippy -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'shippy'" | grep -q 1; then
        as_pg psql -h "$dir" -p "$port" -U shippy -d postgres -qc "CREATE DATABASE shippy" >/dev/null
    fi
}

# TLS only, with a certificate of the development authority, and a password of its own: clients dial
# tls://shippy:…@127.0.0.1 and verify the certificate against the authority (NATS_CA).
start_nats() {
    local port=$1
    mkdir -p "$state/nats"
    "$root/scripts/certificates.sh" "$state/tls" nats
    [ -f "$state/nats.password" ] || (umask 077 && openssl rand -hex 16 >"$state/nats.password")
    cat >"$state/nats.conf" <<CONF
listen: "127.0.0.1:$port"
jetstream { store_dir: "$state/nats" }
tls { cert_file: "$state/tls/nats.pem", key_file: "$state/tls/nats-key.pem" }
authorization { user: shippy, password: "$(cat "$state/nats.password")" }
CONF
    chmod 600 "$state/nats.conf"
    nats-server -c "$state/nats.conf" >"$state/nats.log" 2>&1 &
    echo $! >"$state/nats.pid"
    wait_port nats-server "$port" "$state/nats.log"
}

# The command that runs a MongoDB-compatible server: tests start private instances with it too.
mongo_command() {
    if command -v mongod >/dev/null; then echo "mongod --bind_ip 127.0.0.1"; else echo "$venv/bin/secantusd-py --host 127.0.0.1 --standalone"; fi
}

# Whether this set's MongoDB takes TLS only: asked at `start`, kept for `start-server` (a marker in the state).
mongo_tls() { [ -f "$state/mongo.tls" ]; }

# The MongoDB URL, over TLS verified against the authority when the server takes TLS (no client certificate).
mongo_url() {
    if mongo_tls; then printf 'mongodb://127.0.0.1:%s/?tls=true&tlsCAFile=%s' "$1" "$state/tls/ca.pem"
    else printf 'mongodb://127.0.0.1:%s' "$1"; fi
}

start_mongo() {
    local port=$1 tls=()
    mkdir -p "$state/mongo"
    if mongo_tls; then
        # The server's certificate and key in one file, as both servers take it.
        "$root/scripts/certificates.sh" "$state/tls" mongo
        (umask 077 && cat "$state/tls/mongo.pem" "$state/tls/mongo-key.pem" >"$state/tls/mongo-server.pem")
        if command -v mongod >/dev/null; then
            tls=(--tlsMode requireTLS --tlsCertificateKeyFile "$state/tls/mongo-server.pem" --tlsCAFile "$state/tls/ca.pem"
                --tlsAllowConnectionsWithoutCertificates)
        else
            tls=(--tls-cert-file "$state/tls/mongo-server.pem" --tls-key-file "$state/tls/mongo-server.pem"
                --tls-ca-file "$state/tls/ca.pem")
        fi
    fi
    if command -v mongod >/dev/null; then
        mongod --bind_ip 127.0.0.1 --port "$port" --dbpath "$state/mongo" "${tls[@]}" >"$state/mongo.log" 2>&1 &
    else
        "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$state/mongo" --standalone \
            "${tls[@]}" >"$state/mongo.log" 2>&1 &
    fi
    echo $! >"$state/mongo.pid"
    wait_port MongoDB "$port" "$state/mongo.log"
}

start() {
    mkdir -p "$state"
    if recorded_alive "$state/mongo.pid" "$mongo_pattern" && recorded_alive "$state/nats.pid" nats-server && [ -n "$(postgres_pid)" ]; then
        log "already running (stop them with: scripts/servers.sh stop)"
        cat "$state/env"
        return 0
    fi
    stop quiet
    install_missing
    local mongo_port=${SHIPPY_MONGO_PORT:-$(free_port)} pg_port=${SHIPPY_POSTGRES_PORT:-$(free_port)} nats_port=${SHIPPY_NATS_PORT:-$(free_port)}
    trap 'log "start failed; stopping what was started"; stop quiet' ERR
    if [ "${SHIPPY_MONGO_TLS:-}" = 1 ]; then touch "$state/mongo.tls"; else rm -f "$state/mongo.tls"; fi
    start_mongo "$mongo_port"
    start_nats "$nats_port"
    start_postgres "$pg_port"
    trap - ERR
    {
        # Quoted: the file is sourced, and `&` would end the line.
        echo "SHIPPY_MONGO_URL=\"$(mongo_url "$mongo_port")\""
        echo "SHIPPY_POSTGRES_URL=\"postgres://shippy:$(cat "$state/postgres.password")@127.0.0.1:$pg_port/shippy?sslmode=verify-full&sslrootcert=$state/tls/ca.pem\""
        echo "SHIPPY_NATS_URL=tls://shippy:$(cat "$state/nats.password")@127.0.0.1:$nats_port"
        echo "SHIPPY_NATS_CA=$state/tls/ca.pem"
        echo "SHIPPY_MONGOD=\"$(mongo_command)\""
        echo "SHIPPY_PG_BIN=$(pg_bin)"
    } >"$state/env"
    chmod 600 "$state/env"
    log "MongoDB    $(mongo_url "$mongo_port")$(mongo_tls && echo ", TLS only")   (log: $state/mongo.log)"
    log "NATS       tls://shippy:***@127.0.0.1:$nats_port, TLS only (log: $state/nats.log)"
    log "PostgreSQL postgres://shippy:***@127.0.0.1:$pg_port/shippy, TLS only (log: $(pg_root)/postgres.log)"
    log "URLs written to $state/env"
}

stop() {
    local quiet=${1:-} pid
    [ -d "$state" ] || return 0
    pid=$(postgres_pid)
    if [ -n "$pid" ]; then
        as_pg "$(pg_bin)/pg_ctl" -D "$(pg_root)/data" -m fast -w stop >/dev/null 2>&1 || true
        echo "$pid" >"$state/postgres.pid"
    fi
    stop_pid PostgreSQL "$state/postgres.pid" postgres "$quiet"
    stop_pid nats-server "$state/nats.pid" nats-server "$quiet"
    stop_pid MongoDB "$state/mongo.pid" "$mongo_pattern" "$quiet"
}

purge() {
    stop quiet
    if [ -f "$state/postgres.root" ]; then rm -rf "$(cat "$state/postgres.root")"; fi
    rm -rf "$state"
}

status() {
    local pid
    if recorded_alive "$state/mongo.pid" "$mongo_pattern"; then echo "mongo: running (pid $(cat "$state/mongo.pid"))"; else echo "mongo: stopped"; fi
    if recorded_alive "$state/nats.pid" nats-server; then echo "nats: running (pid $(cat "$state/nats.pid"))"; else echo "nats: stopped"; fi
    pid=$(postgres_pid)
    if [ -n "$pid" ]; then echo "postgres: running (pid $pid)"; else echo "postgres: stopped"; fi
}

# stop_server NAME / start_server NAME: one server of a running set (postgres, nats or mongo), on the port and
# storage it had, for fault tests (`make chaos`).
port_of() { local url=$1; url=${url##*:}; printf '%s' "${url%%/*}"; }
stop_server() {
    case "$1" in
        postgres) as_pg "$(pg_bin)/pg_ctl" -D "$(pg_root)/data" -m fast -w stop >/dev/null ;;
        nats) stop_pid nats-server "$state/nats.pid" nats-server quiet ;;
        mongo) stop_pid MongoDB "$state/mongo.pid" "$mongo_pattern" quiet ;;
        *) die "no server named $1 (postgres, nats, mongo)" ;;
    esac
}
start_server() {
    # shellcheck disable=SC1091
    . "$state/env"
    case "$1" in
        postgres) start_postgres "$(port_of "$SHIPPY_POSTGRES_URL")" ;;
        nats) start_nats "$(port_of "$SHIPPY_NATS_URL")" ;;
        mongo) start_mongo "$(port_of "$SHIPPY_MONGO_URL")" ;;
        *) die "no server named $1 (postgres, nats, mongo)" ;;
    esac
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    install) install_missing ;;
    purge) purge ;;
    stop-server) stop_server "${2:-}" ;;
    start-server) start_server "${2:-}" ;;
    *) echo "usage: $0 start|stop|status|install|purge|stop-server NAME|start-server NAME" >&2; exit 64 ;;
esac
