#!/usr/bin/env bash
# Development certificates, made with openssl: an authority of its own, and a certificate per name it signs.
#
#   scripts/certificates.sh DIR NAME…   in DIR: the authority (ca.pem, ca-key.pem), made once, and for each NAME
#                                       NAME.pem and NAME-key.pem: a certificate whose common name is NAME (a
#                                       service's identity), for 127.0.0.1 and localhost (and NAME as a host name),
#                                       for servers and clients alike, made once and again when it has less
#                                       than 30 days left or lacks a host name asked for (services re-read
#                                       theirs within 5 s)
#   NAME=HOST,HOST…                     the same, for these host names too (the name clients dial: a Kubernetes
#                                       Service's, `vessel-service=vessel,vessel.shippy.svc`)
#   --folders ROOT DIR NAME…            also each NAME's in ROOT/NAME/ as a Kubernetes Secret of cert-manager's
#                                       shape is mounted: tls.crt, tls.key, ca.crt (compose mounts each such
#                                       folder, a volume, at /tls in its service); a file is replaced whole, and
#                                       only when it changed
#
# ECDSA P-256 keys; the authority lasts ten years, a certificate two. For development and tests only: in production
# the certificates come from your authority (cert-manager, say; docs/security.md).
set -euo pipefail

folders=
if [ "${1:-}" = --folders ]; then folders=${2:?--folders needs a folder}; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [--folders ROOT] DIR NAME…" >&2; exit 64; }
dir=$1
shift
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.pem" ]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 3650 \
        -subj "/CN=Shippy development CA" -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" \
        -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 644 "$dir/ca.pem"
fi

# Puts file $1 at $2 unless it is there already: written beside it, then renamed, so a reader never sees half.
place() {
    cmp -s "$1" "$2" && return 0
    cp "$1" "$2.new" && mv -f "$2.new" "$2"
}

# Whether certificate $1 lasts 30 days more and names every host in $2 (DNS:a,DNS:b).
current() {
    local pem=$1 host names wanted
    [ -f "$pem" ] && openssl x509 -checkend $((30 * 86400)) -noout -in "$pem" >/dev/null || return 1
    names=$(openssl x509 -noout -ext subjectAltName -in "$pem" | tail -n +2 | tr -d ' ')
    IFS=, read -ra wanted <<<"$2"
    for host in "${wanted[@]}"; do
        [[ ",$names," == *",$host,"* ]] || return 1
    done
}

# A certificate for $1 with the subject alternative names $2, signed by the authority.
make_certificate() {
    local name=$1 hosts=$2
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=$name" \
        -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" 2>/dev/null
    openssl x509 -req -sha256 -days 730 -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -set_serial "0x$(openssl rand -hex 16)" -out "$dir/$name.pem" -extfile <(
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,%s\n' "$hosts"
            printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n'
            printf 'extendedKeyUsage=serverAuth,clientAuth\n'
        ) 2>/dev/null
    rm -f "$dir/$name.csr"
    chmod 644 "$dir/$name.pem"
}

for argument in "$@"; do
    name=${argument%%=*}
    hosts=DNS:$name
    [ "$argument" != "$name" ] && extra=${argument#*=} && hosts+=",DNS:${extra//,/,DNS:}"
    current "$dir/$name.pem" "$hosts" || make_certificate "$name" "$hosts"
    if [ -n "$folders" ]; then
        mkdir -p "$folders/$name"
        place "$dir/$name-key.pem" "$folders/$name/tls.key"
        place "$dir/$name.pem" "$folders/$name/tls.crt"
        place "$dir/ca.pem" "$folders/$name/ca.crt"
    fi
done
