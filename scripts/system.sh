#!/usr/bin/env bash
# The whole Shippy system, natively on 127.0.0.1: the local servers (scripts/servers.sh) and every service.
#
#   scripts/system.sh up      start everything, show where it is, follow the logs; Ctrl-C stops it all
#   scripts/system.sh start   start everything in the background (for scripts); says so if already running
#   scripts/system.sh stop    stop the services and servers this script started, by their recorded PIDs
#   scripts/system.sh status  say what is running
#   scripts/system.sh demo    the user story with the real CLIs, starting the system first if needed
#   scripts/system.sh grant-admin EMAIL   make a signed-up user an admin (user-service grant-admin, the operator's
#                                         command, against the running system's database); revoke-admin EMAIL undoes it
#
# State (PIDs, logs, the development JWT key) lives under .local/run (SHIPPY_RUN_DIR moves it). Every gRPC hop is
# mutual TLS: a development authority and a certificate per program (its identity) are made once under
# .local/run/tls (scripts/certificates.sh); the CLIs take theirs from .local/run/tls/cli.env (`. .local/run/tls/cli.env`).
# The gateway serves HTTPS with its own (for 127.0.0.1 and localhost): trust .local/run/tls/ca.pem to verify it
# (`curl --cacert`, or import it in a browser). SHIPPY_PLAINTEXT=1 runs every hop in plaintext instead, explicitly.
# Service ports: SHIPPY_CONSIGNMENT_PORT (50051), SHIPPY_VESSEL_PORT (50052), SHIPPY_USER_PORT (50053),
# SHIPPY_EMAIL_PORT (50054, health only); the HTTP API and web app (api-gateway): SHIPPY_GATEWAY_PORT (8080).
# Their /metrics ports: SHIPPY_CONSIGNMENT_METRICS_PORT (9051),
# SHIPPY_VESSEL_METRICS_PORT (9052), SHIPPY_USER_METRICS_PORT (9053), SHIPPY_EMAIL_METRICS_PORT (9054),
# SHIPPY_GATEWAY_METRICS_PORT (9055).
# Prometheus (Debian's, scraping all four, with deploy/prometheus/alerts.yml): SHIPPY_PROMETHEUS_PORT (9090;
# 0 leaves it out). Welcome mails are written to .local/run/mail/.
# SHIPPY_BUILD_CONFIGURATION=release runs release builds (debug by default), as `make bench` does.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run=${SHIPPY_RUN_DIR:-$root/.local/run}
export SHIPPY_SERVERS_DIR=${SHIPPY_SERVERS_DIR:-$run/servers}
export SWIFT_DETERMINISTIC_HASHING=1
# No libmongoc counters in /dev/shm: a file per process, which one that is killed leaves behind.
export MONGOC_DISABLE_SHM=1
# Whether every hop is plaintext, as SHIPPY_PLAINTEXT=1 asks explicitly.
plaintext() { [ "${SHIPPY_PLAINTEXT:-}" = 1 ]; }
# MongoDB takes TLS only, as PostgreSQL and NATS do (scripts/servers.sh), unless every hop is plaintext.
plaintext || export SHIPPY_MONGO_TLS=1
consignment_port=${SHIPPY_CONSIGNMENT_PORT:-50051}
vessel_port=${SHIPPY_VESSEL_PORT:-50052}
user_port=${SHIPPY_USER_PORT:-50053}
email_port=${SHIPPY_EMAIL_PORT:-50054}
gateway_port=${SHIPPY_GATEWAY_PORT:-8080}
declare -A metrics_ports=([consignment-service]=${SHIPPY_CONSIGNMENT_METRICS_PORT:-9051}
    [vessel-service]=${SHIPPY_VESSEL_METRICS_PORT:-9052} [user-service]=${SHIPPY_USER_METRICS_PORT:-9053}
    [email-service]=${SHIPPY_EMAIL_METRICS_PORT:-9054} [api-gateway]=${SHIPPY_GATEWAY_METRICS_PORT:-9055})
prometheus_port=${SHIPPY_PROMETHEUS_PORT:-9090}
services=(vessel-service user-service consignment-service email-service api-gateway)
configuration=${SHIPPY_BUILD_CONFIGURATION:-debug}

# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"

say() { printf '%s\n' "$*"; }
# alive NAME: the recorded process runs and is that service.
alive() { recorded_alive "$run/$1.pid" "$1"; }
bin() { swift build -c "$configuration" --show-bin-path --package-path "$root"; }

running() {
    local service
    for service in "${services[@]}"; do alive "$service" || return 1; done
    [ "$prometheus_port" = 0 ] || recorded_alive "$run/prometheus.pid" prometheus
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# need_port PORT WHAT VARIABLE: fails, naming the variable that moves it, when PORT is taken.
need_port() {
    port_free "$1" || { say "error: port $1 for $2 is taken: stop what uses it, or set $3" >&2; return 1; }
}

# The variable prefix of a service's ports: vessel-service → SHIPPY_VESSEL, api-gateway → SHIPPY_GATEWAY.
variable() { local name=${1%-service}; name=${name#api-}; printf 'SHIPPY_%s' "${name^^}"; }

# identity NAME: the TLS settings that give a program its certificate (its identity) and the authority, one a line;
# PLAINTEXT=true instead with SHIPPY_PLAINTEXT=1 (the benchmarks' baseline: each service then warns that it runs in
# plaintext; a service given neither does not start).
identity() {
    plaintext && { echo PLAINTEXT=true; return 0; }
    printf '%s\n' "TLS_CERTIFICATE=$run/tls/$1.pem" "TLS_KEY=$run/tls/$1-key.pem" "TLS_CA=$run/tls/ca.pem"
}

# gateway_https: the gateway's HTTPS settings, one a line: its identity serves the web app and the HTTP API too.
# No Strict-Transport-Security: a browser would keep every port of localhost to HTTPS for a year. None with
# SHIPPY_PLAINTEXT=1 (plain HTTP, as every other hop).
gateway_https() {
    plaintext && return 0
    printf '%s\n' "HTTPS_CERTIFICATE=$run/tls/api-gateway.pem" "HTTPS_KEY=$run/tls/api-gateway-key.pem" \
        HTTPS_HSTS_MAX_AGE=0
}

# The gateway's address, as a browser or curl takes it.
gateway_url() {
    local scheme=https
    plaintext && scheme=http
    printf '%s://127.0.0.1:%s' "$scheme" "$gateway_port"
}

start_service() {
    local name=$1 port=$2 metrics_port=${metrics_ports[$1]}
    shift 2
    need_port "$port" "$name" "$(variable "$name")_PORT"
    need_port "$metrics_port" "$name's metrics" "$(variable "$name")_METRICS_PORT"
    local tls
    mapfile -t tls < <(identity "$name")
    env "$@" "${tls[@]}" HOST=127.0.0.1 PORT="$port" METRICS_PORT="$metrics_port" "$(bin)/$name" \
        >"$run/logs/$name.log" 2>&1 &
    echo $! >"$run/$name.pid"
}

# Debian's Prometheus on 127.0.0.1, scraping every service's /metrics every 5 s, with Shippy's alert rules.
start_prometheus() {
    [ "$prometheus_port" = 0 ] && return 0
    need_port "$prometheus_port" Prometheus SHIPPY_PROMETHEUS_PORT
    local service
    {
        printf 'global: {scrape_interval: 5s, evaluation_interval: 5s}\n'
        printf 'rule_files: ["%s"]\n' "$root/deploy/prometheus/alerts.yml"
        printf 'scrape_configs:\n  - job_name: shippy\n    static_configs:\n'
        for service in "${services[@]}"; do
            printf '      - {targets: ["127.0.0.1:%s"], labels: {service: %s}}\n' "${metrics_ports[$service]}" "$service"
        done
    } >"$run/prometheus.yml"
    prometheus --config.file="$run/prometheus.yml" --storage.tsdb.path="$run/prometheus" \
        --web.listen-address="127.0.0.1:$prometheus_port" >"$run/logs/prometheus.log" 2>&1 &
    echo $! >"$run/prometheus.pid"
}

wait_prometheus() {
    [ "$prometheus_port" = 0 ] && return 0
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$prometheus_port" && printf 'GET /-/ready HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3) 2>/dev/null; then
            return 0
        fi
        kill -0 "$(head -n 1 "$run/prometheus.pid")" 2>/dev/null \
            || { say "error: prometheus stopped; its log ($run/logs/prometheus.log) ends:" >&2; tail -n 20 "$run/logs/prometheus.log" >&2; return 1; }
        sleep 0.1
    done
    say "error: prometheus was not ready within 30 s; see $run/logs/prometheus.log" >&2
    return 1
}

wait_serving() {
    local name=$1 port=$2 tls https
    mapfile -t tls < <(identity "$name")
    mapfile -t https < <(gateway_https)
    for _ in $(seq 1 600); do
        # api-gateway's healthcheck asks its /readyz on PORT (over HTTPS when it serves that); the services' take
        # the address.
        if [ "$name" = api-gateway ]; then
            env "${https[@]}" PORT="$port" "$(bin)/$name" healthcheck >/dev/null 2>&1 && return 0
        elif env "${tls[@]}" "$(bin)/$name" healthcheck --address "127.0.0.1:$port" >/dev/null 2>&1; then
            return 0
        fi
        # Only whether the PID lives: started a moment ago, it may not have exec'd yet (its command line is
        # still this shell's, and its log not yet truncated), and it cannot have been reused.
        kill -0 "$(head -n 1 "$run/$name.pid")" 2>/dev/null \
            || { say "error: $name stopped; its log ($run/logs/$name.log) ends:" >&2; tail -n 20 "$run/logs/$name.log" >&2; return 1; }
        sleep 0.1
    done
    say "error: $name did not report SERVING within 60 s; see $run/logs/$name.log" >&2
    return 1
}

# The build, with a line each tenth of the way (a first build takes 5 to 15 minutes; later ones seconds).
build() {
    say "Building ($configuration)… (log: $run/logs/build.log)"
    if ! swift build -c "$configuration" --package-path "$root" 2>&1 | tee "$run/logs/build.log" | awk '
        match($0, /^\[[0-9]+\/[0-9]+\]/) {
            split(substr($0, 2, RLENGTH - 2), step, "/")
            # A count that starts again (the plugins are built first, in a count of their own) restarts the tenths.
            if (step[1] + 0 <= 1) shown = 0
            tenth = int(10 * step[1] / step[2])
            if (tenth > shown) { shown = tenth; printf "  built %d of %d steps\n", step[1], step[2]; fflush() }
        }'; then
        say "error: the build failed; its log ($run/logs/build.log) ends:" >&2
        tail -n 30 "$run/logs/build.log" >&2
        return 1
    fi
}

start() {
    if running; then
        say "Shippy is already running (scripts/system.sh stop, or make stop, to stop it)."
        status
        return 0
    fi
    stop quiet
    mkdir -p "$run/logs" "$run/keys"
    "$root/scripts/install.sh"
    "$root/scripts/certificates.sh" "$run/tls" "${services[@]}" shippy-cli
    # Quoted for the shell that sources it (a checkout's path may hold spaces); the CLIs need no PLAINTEXT.
    identity shippy-cli | while IFS= read -r setting; do
        [ "$setting" = PLAINTEXT=true ] || printf 'export %s=%q\n' "${setting%%=*}" "${setting#*=}"
    done >"$run/tls/cli.env"
    build
    "$root/scripts/servers.sh" start
    set -a
    # shellcheck disable=SC1091
    . "$SHIPPY_SERVERS_DIR/env"
    set +a
    trap 'say "start failed; stopping what was started" >&2; stop quiet' ERR
    start_service vessel-service "$vessel_port" MONGO_URL="$SHIPPY_MONGO_URL" JWT_PUBLIC_KEY_FILE="$run/keys/public.pem"
    start_service email-service "$email_port" NATS_URL="$SHIPPY_NATS_URL" NATS_CA="$SHIPPY_NATS_CA" MAILER=files \
        MAIL_DIR="$run/mail"
    # The gateway runs here too: its word about each client's address is taken (TRUSTED_GATEWAYS).
    start_service user-service "$user_port" POSTGRES_URL="$SHIPPY_POSTGRES_URL" NATS_URL="$SHIPPY_NATS_URL" \
        NATS_CA="$SHIPPY_NATS_CA" JWT_GENERATE_KEY=true \
        TRUSTED_GATEWAYS="${TRUSTED_GATEWAYS:-127.0.0.1}" \
        JWT_PRIVATE_KEY_FILE="$run/keys/signing.pem" JWT_PUBLIC_KEY_FILE="$run/keys/public.pem"
    start_service consignment-service "$consignment_port" MONGO_URL="$SHIPPY_MONGO_URL" \
        JWT_PUBLIC_KEY_FILE="$run/keys/public.pem" VESSEL_SERVICE_ADDRESS="127.0.0.1:$vessel_port" \
        NATS_URL="$SHIPPY_NATS_URL" NATS_CA="$SHIPPY_NATS_CA"
    local https
    mapfile -t https < <(gateway_https)
    start_service api-gateway "$gateway_port" USER_SERVICE_ADDRESS="127.0.0.1:$user_port" \
        CONSIGNMENT_SERVICE_ADDRESS="127.0.0.1:$consignment_port" VESSEL_SERVICE_ADDRESS="127.0.0.1:$vessel_port" \
        NATS_URL="$SHIPPY_NATS_URL" NATS_CA="$SHIPPY_NATS_CA" "${https[@]}"
    start_prometheus
    wait_serving vessel-service "$vessel_port"
    wait_serving user-service "$user_port"
    wait_serving consignment-service "$consignment_port"
    wait_serving email-service "$email_port"
    wait_serving api-gateway "$gateway_port"
    wait_prometheus
    trap - ERR
    say ""
    say "Shippy is running:"
    say "  the web app and the HTTP API: $(gateway_url) (its OpenAPI document: /openapi.yaml)"
    say "  (gRPC address, then Prometheus endpoint)"
    say "  consignment-service  127.0.0.1:$consignment_port  http://127.0.0.1:${metrics_ports[consignment-service]}/metrics"
    say "  vessel-service       127.0.0.1:$vessel_port  http://127.0.0.1:${metrics_ports[vessel-service]}/metrics"
    say "  user-service         127.0.0.1:$user_port  http://127.0.0.1:${metrics_ports[user-service]}/metrics"
    say "  email-service        127.0.0.1:$email_port  http://127.0.0.1:${metrics_ports[email-service]}/metrics (gRPC for health only; mail in $run/mail/)"
    say "  api-gateway          (no gRPC)  http://127.0.0.1:${metrics_ports[api-gateway]}/metrics"
    if [ "$prometheus_port" != 0 ]; then
        say "  prometheus           http://127.0.0.1:$prometheus_port (targets: /targets, alerts: /alerts)"
    fi
    say "  logs                 $run/logs/"
    if plaintext; then
        say "Every gRPC hop is plaintext (SHIPPY_PLAINTEXT=1): calls and tokens travel unencrypted."
    else
        say "Every gRPC hop is mutual TLS; for the CLIs: . $run/tls/cli.env"
        say "The gateway serves HTTPS: its authority, for curl --cacert or a browser, is $run/tls/ca.pem"
    fi
    say "Try it: make demo, or see the README's quickstart."
}

stop() {
    local service
    stop_pid prometheus "$run/prometheus.pid" prometheus "${1:-}"
    for service in api-gateway email-service consignment-service user-service vessel-service; do stop_pid "$service" "$run/$service.pid" "$service" "${1:-}"; done
    if [ -d "$SHIPPY_SERVERS_DIR" ]; then "$root/scripts/servers.sh" stop; fi
}

status() {
    local service
    for service in "${services[@]}"; do
        if alive "$service"; then say "$service: running (pid $(cat "$run/$service.pid"))"; else say "$service: stopped"; fi
    done
    if recorded_alive "$run/prometheus.pid" prometheus; then
        say "prometheus: running (pid $(cat "$run/prometheus.pid")), http://127.0.0.1:$prometheus_port"
    elif [ "$prometheus_port" != 0 ]; then
        say "prometheus: stopped"
    fi
    "$root/scripts/servers.sh" status
}

# Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or TERM: the trap only notes it, so
# that the stop below runs once, from the script itself (an `exit` inside a trap that interrupts `wait` in a
# function trips bash: "pop_var_context: head of shell_variables not a function context").
up() {
    start
    local follower signalled=""
    say "Following the logs; Ctrl-C stops everything."
    trap 'signalled=yes' INT TERM
    # The follower ignores SIGINT itself, so that a terminal's Ctrl-C reaches it only through our stop.
    (trap '' INT; exec tail -n 0 -F "$run"/logs/*-service.log "$run/logs/api-gateway.log") &
    follower=$!
    while [ -z "$signalled" ] && kill -0 "$follower" 2>/dev/null; do wait "$follower" || true; done
    trap - INT TERM
    kill "$follower" 2>/dev/null || true
    wait "$follower" 2>/dev/null || true
    say ""
    stop
}

demo() {
    running || start
    local email password token cli
    cli=$(bin)
    # The CLIs' identity: every service takes mutual TLS only.
    # shellcheck disable=SC1091
    . "$run/tls/cli.env"
    email="demo-$(date +%s)-$RANDOM@example.com"
    password="demo-password-$RANDOM"
    say ""
    say "\$ user-cli --name 'Demo User' --email $email --company Shippy --password …"
    # --no-save: the demo's user must not replace a login the person running it keeps.
    USER_SERVICE_ADDRESS="127.0.0.1:$user_port" "$cli/user-cli" --no-save --name "Demo User" --email "$email" \
        --company Shippy --password "$password"
    say ""
    say "\$ TOKEN=\$(user-cli login --email $email)"
    token=$(USER_SERVICE_ADDRESS="127.0.0.1:$user_port" SHIPPY_PASSWORD="$password" "$cli/user-cli" login --no-save --email "$email")
    say "TOKEN=${token:0:24}…"
    say ""
    say "\$ consignment-cli consignment.json \"\$TOKEN\""
    CONSIGNMENT_SERVICE_ADDRESS="127.0.0.1:$consignment_port" "$cli/consignment-cli" "$root/consignment.json" "$token"
    say ""
    say "\$ vessel-cli list \"\$TOKEN\""
    VESSEL_SERVICE_ADDRESS="127.0.0.1:$vessel_port" "$cli/vessel-cli" list "$token"
    say ""
    local trust=()
    plaintext || trust=(--cacert "$run/tls/ca.pem")
    say "\$ curl ${trust[*]} -H \"Authorization: Bearer \$TOKEN\" $(gateway_url)/v1/consignments   # the same, through the HTTP API"
    curl -sS "${trust[@]}" -H "Authorization: Bearer $token" "$(gateway_url)/v1/consignments?page_size=1"
    say ""
    say ""
    say "The welcome mail (email-service, from the user.created event):"
    for _ in $(seq 1 50); do grep -ls "^To: .*<$email>" "$run"/mail/*.eml 2>/dev/null && break; sleep 0.1; done
}

# role grant-admin|revoke-admin EMAIL: the operator's command, with the running system's database.
role() {
    [ -n "${2:-}" ] || { echo "usage: $0 $1 EMAIL" >&2; exit 64; }
    [ -f "$SHIPPY_SERVERS_DIR/env" ] || { say "error: Shippy is not running here (scripts/system.sh start)" >&2; exit 69; }
    # shellcheck disable=SC1091
    POSTGRES_URL=$(. "$SHIPPY_SERVERS_DIR/env" && printf '%s' "$SHIPPY_POSTGRES_URL") "$(bin)/user-service" "$1" "$2"
}

case "${1:-}" in
    up) up ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    demo) demo ;;
    grant-admin | revoke-admin) role "$@" ;;
    *) echo "usage: $0 up|start|stop|status|demo|grant-admin EMAIL|revoke-admin EMAIL" >&2; exit 64 ;;
esac
