#!/usr/bin/env bash
# Containers on this machine, without a Docker engine or a registry: Debian's podman (run with runc and the
# settings in a containers.conf of our own, named by CONTAINERS_CONF) over images made locally.
#
#   scripts/containers.sh base          make debian:bookworm-slim from Debian's archive (debootstrap, minbase)
#   scripts/containers.sh test-install  prove scripts/install.sh: run `install.sh tests` (what make test runs)
#                                       in a fresh container of that base image with the repository mounted,
#                                       then check every header, library, server and test tool is there
#   scripts/containers.sh images        make the stand-ins of the other images the files name (containers/*), again
#                                       when their folder changed
#   scripts/containers.sh build         build shippy:latest from the unchanged Dockerfile, with the Swift
#                                       package mirror mounted where the swift stand-in's git looks for it
#   scripts/containers.sh test          the user story on the unchanged docker-compose.yml (podman-compose),
#                                       Tests/Containers under pytest
#   scripts/containers.sh sizes         the size of shippy:latest and of each executable in it (make bench)
#
# State (the root file system, the configuration) lives under .local/containers.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$root/.local/containers

log() { printf 'containers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# What these machines need, learnt by trying: crun fails here (cgroups in hybrid mode) while runc works, and
# containers start only once the default ulimits are cleared; both settings are needed. podman's bridge
# networks need iptables.
setup() {
    local missing=()
    for tool in podman runc debootstrap iptables; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: install them with: sudo apt-get install -y podman runc debootstrap iptables"
        log "installing ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            podman runc debootstrap iptables netavark aardvark-dns uidmap >/dev/null
    fi
    mkdir -p "$state"
    cat >"$state/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
    export CONTAINERS_CONF=$state/containers.conf
}

# The base image under the name the Dockerfile uses, made once from Debian's archive.
base() {
    if podman image exists docker.io/library/debian:bookworm-slim; then return 0; fi
    log "making debian:bookworm-slim with debootstrap (minbase, about half a minute)"
    rm -rf "$state/rootfs"
    debootstrap --variant=minbase bookworm "$state/rootfs" http://deb.debian.org/debian >"$state/debootstrap.log" 2>&1 \
        || { tail -n 20 "$state/debootstrap.log" >&2; die "debootstrap failed"; }
    tar -C "$state/rootfs" -c . | podman import --quiet - docker.io/library/debian:bookworm-slim >/dev/null
    rm -rf "$state/rootfs"
}

test_install() {
    local copy
    copy=$(mktemp -d "$state/install-test.XXXXXX")
    trap 'rm -rf "$copy"' RETURN
    # The working tree as a clone has it (tracked and new files, not .local or .build).
    (cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -c) | tar -x -C "$copy"
    log "running scripts/install.sh tests in a fresh debian:bookworm-slim container (Debian packages and PyPI: minutes)"
    # The container trusts what this machine trusts (a proxy's certificate authority, where there is one).
    local trust=()
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        trust=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro -e PIP_CERT=/etc/ssl/host-ca.crt)
    fi
    podman run --rm --network host "${trust[@]}" -v "$copy:/src" -w /src docker.io/library/debian:bookworm-slim bash -c '
        set -euo pipefail
        if command -v pkg-config >/dev/null || [ -e /usr/include/nats/nats.h ]; then
            echo "the base image already has build packages: it proves nothing"; exit 1
        fi
        scripts/install.sh tests
        pkg-config --exists libmongoc-1.0 libbson-1.0 libnats && echo "pkg-config: libmongoc-1.0 libbson-1.0 libnats"
        for header in libmongoc-1.0/mongoc/mongoc.h libbson-1.0/bson/bson.h nats/nats.h; do
            test -f "/usr/include/$header" && echo "header: /usr/include/$header"
        done
        libdir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
        for library in libmongoc-1.0.so libbson-1.0.so libnats.so; do test -e "$libdir/$library" && echo "library: $libdir/$library"; done
        echo "server: $(nats-server --version)"
        for tool in postgres initdb pg_ctl; do ls /usr/lib/postgresql/*/bin/$tool; done
        test -x .local/venv/bin/secantusd-py && .local/venv/bin/secantusd-py --help >/dev/null && echo "server: secantusd-py"
        psql --version
        chromium --version && chromedriver --version | head -n 1
        dnsmasq --version | head -n 1 && ip -V && docker-compose version --short && shellcheck --version | head -n 2
        readelf --version | head -n 1 && openssl version && promtool --version 2>&1 | head -n 1
        .local/venv/bin/python -c "import pytest, selenium, schemathesis, cryptography, pymongo, grpc, yaml, opentelemetry.proto"
        .local/k8s-venv/bin/checkov --version && .local/k8s-venv/bin/kubernetes-validate --version
        # Every system test module imports and its tests are found (running them needs the build).
        .local/venv/bin/python -m pytest --collect-only -q -p no:cacheprovider Tests/System | tail -n 1
        echo "install-check: every header, library, server and test tool is there"
        scripts/install.sh tests  # a second run finds everything and installs nothing
    ' || die "the install step did not leave what the build and the run need"
    log "test-install passed"
}

# The trust of this machine (a proxy's certificate authority, where there is one) for builds that use PyPI.
trust_args() {
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        printf '%s\n' -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro --build-arg PIP_CERT=/etc/ssl/host-ca.crt
    fi
}

# The images docker-compose.yml and the Dockerfile name, made here as stand-ins (containers/*/Containerfile).
images() {
    base
    local image name folder
    for image in swift:6.3-bookworm=swift postgres:16=postgres nats:2.10-alpine=nats mongo:7=mongo \
        prom/prometheus:v3.5.0=prometheus jaegertracing/all-in-one:1.76.0=jaeger; do
        name=${image%=*}
        folder=${image#*=}
        # Docker Hub's official images live under library/.
        [[ $name == */* ]] && name=docker.io/$name || name=docker.io/library/$name
        # Built every time: podman's layer cache makes that a no-op for a folder that did not change (the same
        # image, so shippy:latest's cached layers on swift stay valid), and a changed one is rebuilt.
        log "the stand-in $name (containers/$folder): building, or unchanged in podman's cache"
        local extra=()
        case $folder in
            swift) extra=(-v /opt/swift:/toolchain:ro) ;;
            mongo) mapfile -t extra < <(trust_args) ;;
            jaeger) mapfile -t extra < <(trust_args) && extra+=(-v "$root/Tests/Tools:/tools:ro") ;;
        esac
        podman build --network host "${extra[@]}" -t "$name" "$root/containers/$folder" >"$state/$folder.log" 2>&1 \
            || { tail -n 20 "$state/$folder.log" >&2; die "the $name stand-in did not build"; }
    done
}

# shippy:latest from the project's Dockerfile, as `docker compose build` would make it.
build_image() {
    images
    log "building shippy:latest from the Dockerfile (a release build: 15 to 30 minutes the first time)"
    podman build --network host -v /opt/swift-packages:/opt/swift-packages:ro -t localhost/shippy:latest "$root" \
        >"$state/shippy-build.log" 2>&1 || { tail -n 30 "$state/shippy-build.log" >&2; die "shippy:latest did not build"; }
    log "shippy:latest is $(podman image inspect localhost/shippy:latest --format '{{.Size}}' | awk '{printf "%d MB", $1 / 1e6}')"
}

# The image's size and each command's in it, in bytes (a link's: what it runs); make bench sets them against targets.
sizes() {
    podman image exists localhost/shippy:latest || die "no localhost/shippy:latest here: make test-containers builds it"
    echo "image $(podman image inspect localhost/shippy:latest --format '{{.Size}}')"
    podman run --rm --entrypoint /bin/sh localhost/shippy:latest -c \
        'stat -L -c "executable %n %s" /usr/local/bin/shippy /usr/local/bin/*-service /usr/local/bin/*-cli \
            /usr/local/bin/api-gateway'
}

# The compose tests (Tests/Containers) under pytest, with podman-compose, both pinned, in a venv of their own.
test_containers() {
    local venv=$state/venv
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet podman-compose==1.6.0 pytest==9.2.0
    "$venv/bin/python" -m pytest -v -s -p no:cacheprovider "$root/Tests/Containers"
}

# Sizes are read where the image is; nothing is installed for them.
if [ "${1:-}" = sizes ] && ! command -v podman >/dev/null; then die "no podman here, so no image to measure"; fi
setup
case "${1:-}" in
    base) base ;;
    test-install) base && test_install ;;
    images) images ;;
    build) build_image ;;
    test) build_image && test_containers ;;
    sizes) sizes ;;
    *) echo "usage: $0 base|test-install|images|build|test|sizes" >&2; exit 64 ;;
esac
