#!/usr/bin/env bash
# `make bench-tracing`: what tracing costs per call. Release builds started natively on ports of their own,
# the call scenarios of shippy-bench run against each configuration, in interleaved rounds from empty databases:
#
#   off     this checkout, OTEL_EXPORTER_OTLP_ENDPOINT unset (tracing off: the default)
#   on      this checkout, every call traced and exported over OTLP/gRPC to a real receiver
#           (Tests/Tools/otlp_receiver.py, writing the spans to a file), the standard OTEL_* defaults
#   before  only with SHIPPY_BENCH_BASELINE=DIR: the checkout in DIR (e.g. a `git worktree` of a commit from
#           before telemetry), started by its own scripts/system.sh
#
# The table (median of the rounds) goes to stdout and .local/bench-tracing/tracing.md.
#   SHIPPY_BENCH_DURATION  seconds per scenario (10)    SHIPPY_BENCH_ROUNDS  rounds (2)
#   SHIPPY_BENCH_ARGS      scenarios (validate-token token-check get-consignments find-available create-consignment)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
cd "$root"
export SWIFT_DETERMINISTIC_HASHING=1 SHIPPY_BUILD_CONFIGURATION=release
# In plaintext, explicitly, as the baseline checkout runs (tracing's cost is the question here, not TLS's).
export SHIPPY_PLAINTEXT=1
export SHIPPY_CONSIGNMENT_PORT=50251 SHIPPY_VESSEL_PORT=50252 SHIPPY_USER_PORT=50253 SHIPPY_EMAIL_PORT=50254
export SHIPPY_CONSIGNMENT_METRICS_PORT=9251 SHIPPY_VESSEL_METRICS_PORT=9252 SHIPPY_USER_METRICS_PORT=9253 \
    SHIPPY_EMAIL_METRICS_PORT=9254 SHIPPY_PROMETHEUS_PORT=0 SHIPPY_GATEWAY_PORT=8251 SHIPPY_GATEWAY_METRICS_PORT=9255
out=$root/.local/bench-tracing
baseline=${SHIPPY_BENCH_BASELINE:-}
scenarios=${SHIPPY_BENCH_ARGS:-validate-token token-check get-consignments find-available create-consignment}
say() { printf '%s\n' "$*" >&2; }

modes=(off on)
if [ -n "$baseline" ]; then
    baseline=$(cd "$baseline" && pwd)
    [ -x "$baseline/scripts/system.sh" ] || { say "error: $baseline has no scripts/system.sh"; exit 64; }
    modes=(before off on)
fi
"$root/scripts/install.sh"
venv=$root/.local/venv
"$venv/bin/python" -c 'import grpc, opentelemetry.proto' 2>/dev/null || "$venv/bin/pip" install -q grpcio opentelemetry-proto
say "== Building (release)"
swift build -c release >/dev/null
if [ -n "$baseline" ]; then (cd "$baseline" && swift build -c release >/dev/null); fi
bin=$(swift build -c release --show-bin-path)

current=""
receiver=""
finish() {
    if [ -n "$receiver" ]; then kill "$receiver" 2>/dev/null || true; fi
    if [ -n "$current" ]; then SHIPPY_RUN_DIR=$out/run "$current/scripts/system.sh" stop quiet || true; fi
}
trap finish EXIT
rm -rf "$out" && mkdir -p "$out/results"

# measure MODE ROUND: the system of MODE started from empty databases, the scenarios, then everything stopped.
measure() {
    local mode=$1 round=$2 checkout=$root
    local -a tracing=()
    [ "$mode" = before ] && checkout=$baseline
    rm -rf "$out/run" && mkdir -p "$out/run"
    export SHIPPY_RUN_DIR=$out/run SHIPPY_SERVERS_DIR=$out/run/servers
    # The baseline may predate granted roles (user-service's ADMIN_EMAILS then makes the admin).
    export SHIPPY_ADMIN_EMAILS="tracing-$mode-$round-admin@bench.example.com"
    if [ "$mode" = on ]; then
        "$venv/bin/python" "$root/Tests/Tools/otlp_receiver.py" "$out/run/spans.jsonl" >"$out/run/receiver.out" &
        receiver=$!
        for _ in $(seq 1 100); do grep -q '^listening' "$out/run/receiver.out" && break; sleep 0.1; done
        tracing=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$(awk '/^listening/ { print $2 }' "$out/run/receiver.out")")
    fi
    current=$checkout
    env "${tracing[@]}" "$checkout/scripts/system.sh" start >"$out/run/start.log" 2>&1 \
        || { tail -n 20 "$out/run/start.log" >&2; exit 1; }
    local processes=() service
    for service in vessel-service user-service consignment-service email-service; do
        processes+=(--process "$service=$(cat "$out/run/$service.pid")")
    done
    processes+=(--process "postgres=$(cat "$SHIPPY_SERVERS_DIR/postgres.pid")")
    processes+=(--process "mongod=$(cat "$SHIPPY_SERVERS_DIR/mongo.pid")")
    processes+=(--process "nats=$(cat "$SHIPPY_SERVERS_DIR/nats.pid")")
    say "== Round $round, tracing $mode"
    if grep -q grant-admin "$checkout/scripts/system.sh"; then
        SHIPPY_TOKEN=$(admin_token "$checkout/scripts/system.sh" "$bin" "$SHIPPY_ADMIN_EMAILS")
        export SHIPPY_TOKEN
    fi
    # shellcheck disable=SC2086
    USER_SERVICE_ADDRESS=127.0.0.1:$SHIPPY_USER_PORT VESSEL_SERVICE_ADDRESS=127.0.0.1:$SHIPPY_VESSEL_PORT \
    CONSIGNMENT_SERVICE_ADDRESS=127.0.0.1:$SHIPPY_CONSIGNMENT_PORT \
        "$bin/shippy-bench" --prefix "tracing-$mode-$round-" --duration "${SHIPPY_BENCH_DURATION:-10}" \
        "${processes[@]}" --json "$out/results/$mode-$round.json" $scenarios >&2 \
        || say "   some calls failed: the table counts them"
    "$checkout/scripts/system.sh" stop quiet
    current=""
    if [ -n "$receiver" ]; then
        kill "$receiver" 2>/dev/null || true
        wait "$receiver" 2>/dev/null || true
        receiver=""
        wc -l <"$out/run/spans.jsonl" >"$out/results/$mode-$round.spans"
    fi
}

for round in $(seq 1 "${SHIPPY_BENCH_ROUNDS:-2}"); do
    for mode in "${modes[@]}"; do measure "$mode" "$round"; done
done
python3 "$root/scripts/bench_tracing_report.py" "$out/results" "${modes[@]}" | tee "$out/tracing.md"
