#!/bin/sh
# The official image's entry point, in the part compose uses, for secantusd. Its arguments are the server's:
# `mongod …`, or options alone, to which `mongod` is added; anything else is run as it is, as root, as the official
# image does (so that a compose command can prepare files, then exec this with `mongod …`). Run as root, it gives
# /data/db to mongodb and runs itself again as that user. With MONGO_INITDB_ROOT_USERNAME and
# MONGO_INITDB_ROOT_PASSWORD, the first start makes that user (role root, in admin) and every start requires
# authentication, as the official image does. The mongod options it takes: --tlsMode requireTLS,
# --tlsCertificateKeyFile FILE (certificate and key in one), --tlsCAFile FILE (client certificates then required,
# unless --tlsAllowConnectionsWithoutCertificates), --bind_ip_all, --auth; any other is refused, not ignored.
set -eu
[ $# -gt 0 ] || set -- mongod
case "$1" in -*) set -- mongod "$@" ;; esac
[ "$1" = mongod ] || exec "$@"
if [ "$(id -u)" = 0 ]; then
    chown -R mongodb:mongodb /data/db
    # HOME too, as gosu sets it: the server must not look into root's (secantusd reads its settings there).
    HOME=/data/db exec setpriv --reuid=mongodb --regid=mongodb --init-groups "$0" "$@"
fi
shift
server=/opt/secantus/bin/secantusd-py
data="--storage-path /data/db --port 27017 --standalone"
auth='' tls='' certificate_required=''
[ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] && auth=--auth
while [ $# -gt 0 ]; do
    case "$1" in
        --tlsMode)
            [ "$2" = requireTLS ] || { echo "mongod (stand-in): --tlsMode $2: only requireTLS" >&2; exit 64; }
            shift 2 ;;
        --tlsCertificateKeyFile) tls="$tls --tls-cert-file $2 --tls-key-file $2"; shift 2 ;;
        --tlsCAFile) tls="$tls --tls-ca-file $2"; certificate_required=${certificate_required:-yes}; shift 2 ;;
        --tlsAllowConnectionsWithoutCertificates) certificate_required=no; shift ;;
        --bind_ip_all) shift ;;
        --auth) auth=--auth; shift ;;
        *) echo "mongod (stand-in): $1 is not supported" >&2; exit 64 ;;
    esac
done
[ "$certificate_required" = yes ] && tls="$tls --tls-require-client-cert"
if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] && [ ! -f /data/db/.root-user ]; then
    # On 127.0.0.1 alone, without TLS or authentication, long enough to make the user.
    # shellcheck disable=SC2086 # the options are words
    "$server" --host 127.0.0.1 $data >/dev/null 2>&1 &
    first=$!
    /opt/secantus/bin/python3 -c '
import os, pymongo
client = pymongo.MongoClient("127.0.0.1", 27017, directConnection=True, serverSelectionTimeoutMS=60000)
client.admin.command("createUser", os.environ["MONGO_INITDB_ROOT_USERNAME"],
                     pwd=os.environ["MONGO_INITDB_ROOT_PASSWORD"], roles=["root"])'
    kill "$first"
    wait "$first" || true
    touch /data/db/.root-user
    echo "entrypoint: made the user $MONGO_INITDB_ROOT_USERNAME"
fi
# shellcheck disable=SC2086 # the options are words
exec "$server" --host 0.0.0.0 $data $tls $auth
