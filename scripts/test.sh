#!/usr/bin/env bash
# `make test`: builds everything, starts private local servers (scripts/servers.sh, state under
# .local/test-servers so a running `make up` is left alone), runs every test against them, stops them.
# Arguments go to `swift test` (e.g. `scripts/test.sh --filter Vessel`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export SWIFT_DETERMINISTIC_HASHING=1
export SHIPPY_SERVERS_DIR=$root/.local/test-servers

# A fresh machine gets what the build, the servers and the tests need first (Debian and PyPI packages).
"$root/scripts/install.sh" tests
venv=$root/.local/venv
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
    # push the other end-to-end tests' health probes past their bounds. The login flood (300 calls with 10 s
    # deadlines) and the live vessel timeout (0.3 s inside a 4.5 s deadline) bound a time too, and on two cores the
    # other end-to-end tests beside them pushed calls past it (deadlineExceeded): they run after, together. The
    # sign-up burst (40 hashes queued within their deadlines) runs alone: hashing threads yield to all else.
    after="LoginFloodTests|LiveConfigurationTests"
    swift test --skip-build --filter ShippyEndToEndTests --skip "BookingCrashEndToEndTests|SignUpBurstTests|$after"
    swift test --skip-build --filter "$after"
    swift test --skip-build --filter SignUpBurstTests
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
