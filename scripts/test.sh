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
# What the tests run from PyPI, pinned (Tests/System/requirements.txt says what each is for).
venv=$root/.local/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$root/Tests/System/requirements.txt"
# The Kubernetes manifests' checkers live in a venv of their own: checkov pins dependencies of its own.
k8s_venv=$root/.local/k8s-venv
[ -x "$k8s_venv/bin/python" ] || python3 -m venv "$k8s_venv"
"$k8s_venv/bin/pip" install -q kubernetes-validate==1.37.0 checkov==3.3.30
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
    # executables as processes. No test asserts how fast anything is: figures are `make bench`'s.
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
    # The system as users run it, and the checks of what cannot run here (Tests/System, under pytest): the native
    # run and its signals, the fault campaign's short form, the web app and schemathesis, many hosts, the
    # deployment files and the sources. One report, and pytest's closing line.
    "$venv/bin/python" -m pytest -v -s -p no:cacheprovider "$root/Tests/System"
fi
