#!/usr/bin/env bash
# The native run, tested as a user meets it: `start` in the background, `demo` prints a consignment booked
# on a vessel, the Prometheus it started scrapes every service as up and loaded the alert rules, `stop`
# leaves none of the processes it started alive. Runs on free ports in a state folder of
# its own, so a running `make up` is left alone. Part of `make test`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
SHIPPY_RUN_DIR=$(mktemp -d "$root/.local/test-system.XXXXXX")
SHIPPY_CONSIGNMENT_PORT=$(free_port)
SHIPPY_VESSEL_PORT=$(free_port)
SHIPPY_USER_PORT=$(free_port)
SHIPPY_EMAIL_PORT=$(free_port)
for service in CONSIGNMENT VESSEL USER EMAIL GATEWAY; do export "SHIPPY_${service}_METRICS_PORT=$(free_port)"; done
SHIPPY_GATEWAY_PORT=$(free_port)
SHIPPY_PROMETHEUS_PORT=$(free_port)
SHIPPY_SERVERS_DIR=$SHIPPY_RUN_DIR/servers
export SHIPPY_RUN_DIR SHIPPY_SERVERS_DIR SHIPPY_CONSIGNMENT_PORT SHIPPY_VESSEL_PORT SHIPPY_USER_PORT SHIPPY_EMAIL_PORT \
    SHIPPY_PROMETHEUS_PORT SHIPPY_GATEWAY_PORT
trap '"$root/scripts/system.sh" stop >/dev/null 2>&1 || true; "$root/scripts/servers.sh" purge; rm -rf "$SHIPPY_RUN_DIR"' EXIT

fail() { echo "test-system: FAILED: $*" >&2; exit 1; }

"$root/scripts/system.sh" start >/dev/null
second=$("$root/scripts/system.sh" start)
echo "$second" | grep -q "already running" || fail "a second start did not say it was already running: $second"
pids=$(cat "$SHIPPY_RUN_DIR"/*.pid "$SHIPPY_RUN_DIR"/servers/*.pid)
[ "$(echo "$pids" | wc -w)" -eq 9 ] || fail "expected 9 PIDs (4 services, the gateway, Prometheus, 3 servers), got: $pids"

demo=$("$root/scripts/system.sh" demo)
echo "$demo" | grep -q "^Created consignment " || fail "demo did not create a consignment: $demo"
echo "$demo" | grep -Eq "^  vessel: +vessel[0-9]+" || fail "demo's consignment has no vessel id: $demo"
echo "$demo" | grep -q "/mail/.*\.eml$" || fail "demo shows no welcome mail: $demo"
echo "$demo" | grep -Eq "^  vessel003  .*  9/12 containers" || fail "demo does not list the fleet with vessel003's room taken: $demo"
echo "$demo" | grep -q '"vessel_id" : "vessel003"' || fail "demo's curl through the gateway does not list the consignment: $demo"

# Prometheus scrapes every 5 s: within 30 s each of the four services and the gateway is a target that is up.
targets=$(python3 "$root/scripts/prometheus_targets.py" "http://127.0.0.1:$SHIPPY_PROMETHEUS_PORT" 5 30 2>&1) \
    || fail "$targets"
echo "$targets"

"$root/scripts/system.sh" stop >/dev/null
for pid in $pids; do
    if kill -0 "$pid" 2>/dev/null; then fail "process $pid is still running after stop"; fi
done
echo "test-system: start, a second start, demo and stop passed; all $(echo "$pids" | wc -w) started processes are gone"
