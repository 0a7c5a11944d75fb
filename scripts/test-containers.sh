#!/usr/bin/env bash
# `make test-containers` (through scripts/containers.sh test, which first makes the images): the README's
# container path on the unchanged docker-compose.yml, run by podman-compose:
#   1. `up`: every service reports healthy;
#   2. the user story, with the CLIs as compose runs them: sign up, log in, ship consignment.json, list the fleet
#      (the file goes in on stdin, the form docs/containers.md gives, that works whoever may read the checkout's folder);
#   3. the services run as the non-root user of the image;
#   2b. the welcome mail appears in the email service's log;
#   2c. Prometheus scrapes the four services as up, with the alert rules loaded; the trace backend (Jaeger's
#      stand-in, which logs the spans it receives) holds the consignment's trace across both services;
#   4. `down` and `up --scale vessel=3` again: the old token still works (the signing key survived), the user
#      logs in and the consignment is still listed (the volumes persist); the same configuration reaches all
#      three vessel replicas: fleet listings through the gateway land on each within 60 s, and Prometheus scrapes
#      each;
#   5. `stop`: every Shippy service exits 0 on SIGTERM (the servers' codes are printed);
# and `down -v` at the end, whatever happened. State under .local/containers.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$root/.local/containers
project=shippy-test
export CONTAINERS_CONF=$state/containers.conf

log() { printf 'test-containers: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

venv=$state/venv
if [ ! -x "$venv/bin/podman-compose" ]; then
    log "installing podman-compose (PyPI) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet podman-compose
fi
compose() { "$venv/bin/podman-compose" --project-name "$project" --file "$root/docker-compose.yml" "$@"; }
# A CLI as `docker compose run --rm` runs it (no terminal here: -T); podman-compose, unlike Docker's, wants
# its profile named.
cli() { compose --profile cli run --rm -T "$@"; }
container() { printf '%s_%s_%s' "$project" "$1" "${2:-1}"; }
services=(mongo postgres nats prometheus jaeger vessel user consignment email gateway)

# podman runs health checks from systemd timers, which these machines lack: without this loop the status of
# every container would stay "starting". (podman 4.3 also makes podman-compose ignore `condition:
# service_healthy`, which needs podman 4.6: the services start together and wait for their dependencies
# themselves, as they do anywhere, with their startup retry.)
drive_health_checks() {
    trap 'exit 0' TERM  # after the check in flight, so that none runs on a container being removed
    while true; do
        for name in $(project_containers); do
            podman healthcheck run "$name" >/dev/null 2>&1 || true
        done
        sleep 2
    done
}

# Waits for every service's containers (vessel's `vessels` of them) to report healthy.
wait_healthy() {
    local service status name
    for name in $(for service in "${services[@]}"; do
        if [ "$service" = vessel ]; then
            for replica in $(seq 1 "$vessels"); do container vessel "$replica"; echo; done
        else
            container "$service"; echo
        fi
    done); do
        for _ in $(seq 1 120); do
            status=$(podman inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null || true)
            [ "$status" = healthy ] && break
            sleep 1
        done
        [ "$status" = healthy ] || { podman logs --tail 20 "$name" >&2 || true; fail "$name is $status after 120 s"; }
    done
    log "every service is healthy:"
    podman ps --filter "label=io.podman.compose.project=$project" --format '  {{.Names}}  {{.Status}}' >&2
}

vessels=1
up() {
    compose up -d --scale vessel="$vessels" >"$state/compose-up.log" 2>&1 \
        || { tail -n 30 "$state/compose-up.log" >&2; fail "compose up"; }
    wait_healthy
}

# The project's containers, every replica of `--scale` included (podman-compose's `stop` and `down` reach only the
# first of each service).
project_containers() { podman ps "$@" --filter "label=io.podman.compose.project=$project" --format '{{.Names}}'; }

# Removes the project's containers and volumes; what podman says goes to down.log.
down() {
    {
        compose down -v || true
        for _ in 1 2 3; do
            [ -z "$(project_containers -a)" ] && break
            project_containers -a | xargs -r podman rm -f --time 10 || sleep 1
        done
        podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f || true
    } >"$state/down.log" 2>&1
    [ -z "$(project_containers -a)" ] || log "left behind (see $state/down.log): $(project_containers -a | xargs)"
}

stop_health_checks() { kill "$health_driver" 2>/dev/null || true; wait "$health_driver" 2>/dev/null || true; }

drive_health_checks &
health_driver=$!
trap 'stop_health_checks; down' EXIT
down

log "compose up"
up

password="correct horse battery"
# The first sign-up right after start once met PostgreSQL answering slowly ("did not answer within 5.0 s"): as a
# user told "unavailable" would, try again, with a new address each time so a half-done try cannot collide.
for try in 1 2 3; do
    email="ewan-$RANDOM@example.com"
    cli user-cli --name "Ewan Valentine" --email "$email" --company BBC --password "$password" \
        >"$state/signup.out" 2>&1 && break
    if [ "$try" -eq 3 ] || ! grep -q "unavailable" "$state/signup.out"; then
        cat "$state/signup.out" >&2
        fail "user-cli could not sign up"
    fi
    log "sign-up $try answered unavailable, trying again: $(tail -n 1 "$state/signup.out")"
    sleep 2
done
login() { cli -e SHIPPY_PASSWORD="$password" user-cli login --email "$email" 2>/dev/null | tail -n 1; }
is_token() { [ "$(grep -o '\.' <<<"$1" | wc -l)" -eq 2 ]; }
token=$(login)
is_token "$token" || fail "user-cli login printed no token: $token"
log "signed up and logged in as $email; user-cli printed:"
sed 's/^/  /' "$state/signup.out" >&2

cli consignment-cli - "$token" <"$root/consignment.json" >"$state/ship.out" 2>&1 \
    || { cat "$state/ship.out" >&2; fail "consignment-cli could not ship consignment.json"; }
grep -q "^Created consignment" "$state/ship.out" || fail "consignment-cli: $(cat "$state/ship.out")"
grep -q "^Your consignments (1):" "$state/ship.out" || fail "consignment-cli: $(cat "$state/ship.out")"
cli vessel-cli list "$token" >"$state/fleet.out" 2>&1 || { cat "$state/fleet.out" >&2; fail "vessel-cli list"; }
log "shipped consignment.json, then listed the fleet:"
sed 's/^/  /' "$state/ship.out" "$state/fleet.out" >&2
mailed=""
for _ in $(seq 1 30); do
    mailed=$(podman logs "$(container email)" 2>&1 | grep "welcome mail sent" | grep -F "$email" || true)
    [ -n "$mailed" ] && break
    sleep 1
done
[ -n "$mailed" ] || fail "no welcome mail to $email in the email service's log"
log "the welcome mail, in the email service's log:"
printf '  %s\n' "$mailed" >&2

targets=$(python3 "$root/scripts/prometheus_targets.py" http://127.0.0.1:9090 5 60 2>&1) || fail "$targets"
log "Prometheus (published on 9090) scrapes every service:"
printf '%s\n' "$targets" | sed 's/^/  /' >&2
# The stand-in logs every span as a JSON line: the CreateConsignment's trace must hold vessel-service's Book.
trace=""
for _ in $(seq 1 30); do
    trace=$(podman logs "$(container jaeger)" 2>/dev/null | python3 -c '
import json, sys
spans = [json.loads(line) for line in sys.stdin if line.startswith("{")]
for create in (s for s in spans if s["name"] == "consignment.ShippingService/CreateConsignment"):
    trace = [s for s in spans if s["trace_id"] == create["trace_id"]]
    if any(s["service"] == "vessel-service" and s["name"] == "vessel.VesselService/Book" for s in trace):
        names = sorted({span["service"] + " " + span["name"] for span in trace})
        print("trace " + create["trace_id"] + ": " + ", ".join(names))
        break
' || true)
    [ -n "$trace" ] && break
    sleep 1
done
[ -n "$trace" ] || fail "the trace backend has no CreateConsignment trace holding vessel-service's Book"
log "the trace backend received the consignment's trace across services:"
printf '  %s\n' "$trace" >&2

# The gateway (published on 8080): the consignment shipped with consignment-cli, through HTTP with a token.
listed=$(python3 - "$token" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request("http://127.0.0.1:8080/v1/consignments",
                                 headers={"Authorization": "Bearer " + sys.argv[1]})
page = json.load(urllib.request.urlopen(request, timeout=10))
print(", ".join(c["id"] + " on " + c["vessel_id"] for c in page["consignments"]))
PY
) || fail "the gateway does not list the consignment"
[ -n "$listed" ] || fail "the gateway lists no consignment"
log "the gateway (http://127.0.0.1:8080) lists the consignment: $listed"

for service in vessel user consignment email gateway; do
    uid=$(podman exec "$(container "$service")" id -u)
    [ "$uid" = 10001 ] || fail "$service runs as uid $uid, not the image's shippy user"
done
log "the services and the gateway run as uid 10001 (shippy), not root"

log "compose down, keeping the volumes, then up again with --scale vessel=3"
compose down >/dev/null 2>&1
vessels=3
up
# The token from before the restart still works: the signing key survived in its volume.
cli vessel-cli list "$token" >/dev/null 2>&1 || fail "after a restart the old token is refused: the signing key did not survive"
token=$(login)
is_token "$token" || fail "after a restart the user cannot log in: $token"
cli consignment-cli - "$token" <"$root/consignment.json" >"$state/ship-again.out" 2>&1 \
    || { cat "$state/ship-again.out" >&2; fail "consignment-cli after a restart"; }
grep -q "^Your consignments (2):" "$state/ship-again.out" \
    || fail "after a restart the first consignment is gone: $(cat "$state/ship-again.out")"
log "after the restart the old token still works (the signing key survived), the user logs in, and the first consignment is still listed:"
sed 's/^/  /' "$state/ship-again.out" >&2

# The gateway's one client balances over the three replicas: each one answers some of 30 listings, counted by
# its own /metrics (each container's address, from this host).
mapfile -t addresses < <(for replica in 1 2 3; do
    podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container vessel "$replica")"
done)
spread=$(python3 - "$token" "${addresses[@]}" <<'PY'
import re, sys, time, urllib.request
token, addresses = sys.argv[1], sys.argv[2:]
def listed(address):
    text = urllib.request.urlopen(f"http://{address}:9052/metrics", timeout=5).read().decode()
    return sum(float(n) for n in re.findall(r'^grpc_server_handled_total\{[^}]*grpc_method="List"[^}]*\} (\S+)', text, re.M))
before = [listed(a) for a in addresses]
# The gateway looks the name up every 5 s, so a replica started after it is called once it is known: list until
# each replica has answered some and at least 30 were made, within 60 s.
deadline, calls = time.monotonic() + 60, 0
while True:
    request = urllib.request.Request("http://127.0.0.1:8080/v1/vessels", headers={"Authorization": "Bearer " + token})
    urllib.request.urlopen(request, timeout=10).read()
    calls += 1
    if calls % 10 == 0:
        counts = [int(listed(a) - b) for a, b in zip(addresses, before)]
        if (all(counts) and calls >= 30) or time.monotonic() > deadline:
            break
print(f"{calls} listings: " + ", ".join(f"vessel_{i + 1} {n}" for i, n in enumerate(counts)))
sys.exit(0 if all(counts) else 1)
PY
) || fail "listings through the gateway did not reach every vessel replica within 60 s: $spread"
log "fleet listings through the gateway, by vessel replica: $spread"
targets=$(python3 "$root/scripts/prometheus_targets.py" http://127.0.0.1:9090 7 60 2>&1) || fail "$targets"
log "Prometheus scrapes all three vessel replicas (7 targets up)"

# In dependency order first (the gateway before the services, the services before their servers), then the
# replicas `compose stop` leaves running; each must have exited (a running container's exit code reads 0 too).
compose stop >/dev/null 2>&1
# (podman's complaints about the systemd timers of health checks, which these machines lack, go to stop.log)
project_containers | xargs -r podman stop --time 30 >"$state/stop.log" 2>&1 \
    || { cat "$state/stop.log" >&2; fail "podman stop of the remaining replicas"; }
for name in "$(container vessel 1)" "$(container vessel 2)" "$(container vessel 3)" $(for service in user consignment email gateway; do
    container "$service"; echo
done); do
    status=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$name")
    [ "$status" = "exited 0" ] || { podman logs --tail 20 "$name" >&2 || true; fail "$name on SIGTERM: $status"; }
done
log "every Shippy service, each vessel replica included, exited 0 on SIGTERM (the servers: $(for service in mongo postgres nats prometheus jaeger; do
    printf '%s %s ' "$service" "$(podman inspect --format '{{.State.ExitCode}}' "$(container "$service")")"
done | sed 's/ $//'))"
size=$(podman image inspect localhost/shippy:latest --format '{{.Size}}')
log "passed; shippy:latest is $((size / 1000000)) MB"
