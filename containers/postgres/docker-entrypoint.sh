#!/bin/sh
# The official image's entry point, in the part compose uses. Its arguments are the server's: `postgres …`, or
# options alone (`-c ssl=on`), to which `postgres` is added; anything else is run as it is, as root, as the official
# image does (so that a compose command can prepare files, then exec this with `postgres …`). Run as root, it gives
# the data folder to postgres and runs itself again as that user. The first start makes the cluster, the user and
# the database that the environment names; every start then runs the server in the foreground (exec: it gets the
# stop signal; SIGINT is PostgreSQL's fast shutdown).
set -eu
[ $# -gt 0 ] || set -- postgres
case "$1" in -*) set -- postgres "$@" ;; esac
[ "$1" = postgres ] || exec "$@"
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    # HOME too, as gosu sets it: the server must not look into root's (secantusd reads its settings there).
    HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "entrypoint: POSTGRES_PASSWORD must be set" >&2
    exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth-host=scram-sha-256 --auth-local=trust \
        -D "$PGDATA" >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "entrypoint: made the cluster with user $POSTGRES_USER and database $POSTGRES_DB"
fi
shift
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
