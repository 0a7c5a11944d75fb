#!/usr/bin/env bash
# What building, running and testing Shippy need on a Debian machine, installed when missing; `make up`,
# `make test` and scripts/servers.sh call it, so the README's two commands set up a fresh machine by themselves.
#
#   scripts/install.sh         what the build and the run need:
#     build:   pkg-config, the MongoDB C driver (libmongoc-dev, libbson-dev), the NATS C client (libnats-dev)
#     servers: PostgreSQL, nats-server, python3-venv, and secantusdb from PyPI into .local/venv (unless a real
#              mongod is on PATH); Prometheus (`make up` starts it; promtool checks the alert rules); curl (`make demo`)
#   scripts/install.sh tests   that, and what `make test` runs beside the build:
#     Debian:  chromium and chromium-driver (the web tests), dnsmasq-base and iproute2 (test hosts), docker-compose,
#              the deployment checks' shellcheck, readelf (binutils) and protoc (protobuf-compiler: make check-proto),
#              openssl (the test servers' password)
#     PyPI:    Tests/System/requirements.txt into .local/venv (pytest, Selenium, schemathesis, …), and the Kubernetes
#              checkers into .local/k8s-venv (checkov pins dependencies of its own)
#
# As root it installs; otherwise it names the one command to run and exits 1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/.local/venv
k8s_venv=$root/.local/k8s-venv
secantus_version=0.7.0b3

log() { printf 'install: %s\n' "$*" >&2; }

packages=(pkg-config libmongoc-dev libbson-dev libnats-dev nats-server python3-venv prometheus curl)
case "${1:-}" in
    "") ;;
    tests)
        packages+=(chromium chromium-driver dnsmasq-base iproute2 docker-compose shellcheck binutils protobuf-compiler
            openssl)
        ;;
    *) echo "usage: $0 [tests]" >&2; exit 64 ;;
esac
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | grep -q . || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages; install them with: sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
    log "installing ${missing[*]} (Debian packages)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v mongod >/dev/null && [ ! -x "$venv/bin/secantusd-py" ]; then
    log "installing secantusdb==$secantus_version (a MongoDB-compatible server) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "secantusdb==$secantus_version"
fi
if [ "${1:-}" = tests ]; then
    # pip looks nothing up when every pinned version is already there.
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$root/Tests/System/requirements.txt"
    [ -x "$k8s_venv/bin/python" ] || python3 -m venv "$k8s_venv"
    "$k8s_venv/bin/pip" install -q kubernetes-validate==1.37.0 checkov==3.3.30
fi
