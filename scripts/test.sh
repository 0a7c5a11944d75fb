#!/usr/bin/env bash
# `make test`: builds everything, starts private local servers (scripts/servers.sh, state under
# .local/test-servers so a running `make up` is left alone), runs every test against them, stops them.
# Arguments go to `swift test` (e.g. `scripts/test.sh --filter Vessel`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export SWIFT_DETERMINISTIC_HASHING=1
export SHIPPY_SERVERS_DIR=$root/.local/test-servers

# A fresh machine gets what the build and the servers need first (Debian packages, the Python venv).
"$root/scripts/install.sh"
# The tracing tests' OTLP receiver (Tests/Tools/otlp_receiver.py) runs on grpcio and opentelemetry-proto; the
# web tests (scripts/test_web.py) drive Debian's chromium with Selenium and run schemathesis; the multi-host
# tests (scripts/test_multihost.py) build test hosts with iproute2, name them with dnsmasq and sign their token
# with cryptography; the fault campaign (scripts/chaos.py) reads MongoDB with pymongo.
venv=$root/.local/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import grpc, opentelemetry.proto, selenium, schemathesis, cryptography, pymongo' 2>/dev/null \
    || "$venv/bin/pip" install -q grpcio opentelemetry-proto selenium schemathesis cryptography pymongo==4.20.1
# What the system-level tests run, from Debian: the browser and its driver (web tests), dnsmasq and iproute2
# (test hosts), docker-compose, shellcheck and readelf (the deployment checks), openssl (the test servers' password).
missing=()
for tool in chromium:chromium chromedriver:chromium-driver dnsmasq:dnsmasq-base ip:iproute2 \
    docker-compose:docker-compose shellcheck:shellcheck readelf:binutils openssl:openssl; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test: missing Debian packages; install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# The compose check reads YAML with the system's python3.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
export SHIPPY_TEST_PYTHON=$venv/bin/python
swift build --build-tests
"$root/scripts/servers.sh" start
trap '"$root/scripts/servers.sh" purge' EXIT
set -a
# shellcheck disable=SC1091
. "$SHIPPY_SERVERS_DIR/env"
set +a
SHIPPY_BIN_DIR=$(swift build --show-bin-path)
export SHIPPY_BIN_DIR
if [ $# -eq 0 ]; then
    # In layers, each target's tests in parallel: in process, then against the servers, then the built
    # executables as processes. No test asserts a time: figures are `make bench`'s.
    swift test --skip-build --filter ShippyUnitTests
    swift test --skip-build --filter ShippyIntegrationTests
    # The crash test kills and starts services and stops MongoDB under load: alone, so that its load does not
    # push the other end-to-end tests' health probes past their bounds.
    swift test --skip-build --filter ShippyEndToEndTests --skip BookingCrashEndToEndTests
    swift test --skip-build --filter BookingCrashEndToEndTests
else
    swift test "$@"
fi
if [ $# -eq 0 ]; then
    "$root/scripts/test-system.sh"
    # The fault campaign's short form (four faults under load, every invariant checked); `make chaos` runs all.
    "$venv/bin/python" "$root/scripts/chaos.py" --short --build debug --seed 1 --report "$root/.local/chaos-short/CHAOS.md"
    python3 "$root/scripts/test_up_signals.py"
    "$venv/bin/python" "$root/scripts/test_web.py"
    "$venv/bin/python" "$root/scripts/test_multihost.py"
    # The Kubernetes manifests' checkers live in a venv of their own: checkov pins dependencies of its own.
    k8s_venv=$root/.local/k8s-venv
    if [ ! -x "$k8s_venv/bin/checkov" ] || [ ! -x "$k8s_venv/bin/kubernetes-validate" ]; then
        python3 -m venv "$k8s_venv"
        "$k8s_venv/bin/pip" install -q kubernetes-validate==1.37.0 checkov==3.3.30
    fi
    "$k8s_venv/bin/python" "$root/scripts/check_kubernetes.py"
    "$root/scripts/check-deployment.sh"
    "$root/scripts/check-format.sh"
    promtool check config "$root/deploy/prometheus/prometheus.yml"  # and the alert rules it names
fi
