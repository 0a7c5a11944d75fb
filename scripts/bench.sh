#!/usr/bin/env bash
# `make bench`: a release build of Shippy started natively on its own ports, each shippy-bench scenario run
# against it (beside a bare grpc-go greeter when ../shared/perf-reference is there), the call scenarios profiled
# with perf, FindAvailable's query timed through libmongoc alone, then BENCHMARKS.md and BENCHMARKS.svg written from
# the figures, and each ratio compared with the committed report's (exit 1 when one is more than 25 % worse).
# Everything it starts lives under .local/bench and is stopped at the end.
#
#   SHIPPY_BENCH_DURATION   seconds each scenario is measured (10)
#   SHIPPY_BENCH_ARGS       more shippy-bench arguments (e.g. "find-available auth" to run only those)
#   SHIPPY_PERF_REFERENCE   the reference greeters (default ../shared/perf-reference beside the project)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
cd "$root"
export SWIFT_DETERMINISTIC_HASHING=1
export SHIPPY_RUN_DIR=$root/.local/bench
export SHIPPY_SERVERS_DIR=$SHIPPY_RUN_DIR/servers
export SHIPPY_BUILD_CONFIGURATION=release
# In plaintext, explicitly: h2load (Health/Check beside the greeter) has no client certificate, and the figures
# compare with the earlier reports. What mutual TLS costs is measured at the end, beside a vessel-service over TLS.
export SHIPPY_PLAINTEXT=1
# Ports of their own, so that a running `make up` is left alone; no Prometheus scraping during the figures.
export SHIPPY_CONSIGNMENT_PORT=50151 SHIPPY_VESSEL_PORT=50152 SHIPPY_USER_PORT=50153 SHIPPY_EMAIL_PORT=50154
export SHIPPY_CONSIGNMENT_METRICS_PORT=9151 SHIPPY_VESSEL_METRICS_PORT=9152 SHIPPY_USER_METRICS_PORT=9153 \
    SHIPPY_EMAIL_METRICS_PORT=9154 SHIPPY_PROMETHEUS_PORT=0 SHIPPY_GATEWAY_PORT=8151 SHIPPY_GATEWAY_METRICS_PORT=9155
greeter_port=50159 tls_vessel_port=50162 openssl_port=50163 swift_greeter_port=50164
prefix="bench-$(date +%s)-"
run=$SHIPPY_RUN_DIR
reference=${SHIPPY_PERF_REFERENCE:-$root/../shared/perf-reference}
say() { printf '%s\n' "$*" >&2; }
# top_symbols DATA OUT: the symbols with 1 % or more of perf's samples in DATA, by self time, demangled, into OUT.
top_symbols() {
    perf report -i "$1" --stdio --no-children --sort dso,sym -q --percent-limit 1 2>>"$run/logs/perf.log" \
        | head -n 15 | swift demangle --simplified >"$2"
}
# grpc_load CALLS PORT PATH BODY: h2load sending CALLS unary gRPC calls of the framed request in $run/BODY to PATH
# on 127.0.0.1:PORT, over 16 connections of 10 streams each. Call it in a subshell (a pipeline, `&`): it becomes
# h2load (exec), so that killing the background job's PID stops the load rather than leave h2load running.
grpc_load() {
    exec h2load -n "$1" -c 16 -m 10 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' -d "$run/$4" \
        "http://127.0.0.1:$2/$3"
}
# Sets the array `environment` to the environment process PID runs with, less the settings named after PID.
environment_of() {
    local pid=$1 setting all
    shift
    mapfile -d '' all <"/proc/$pid/environ"
    environment=()
    for setting in "${all[@]}"; do
        case " $* " in *" ${setting%%=*} "*) ;; *) environment+=("$setting") ;; esac
    done
}

greeter_pid="" tls_vessel_pid="" openssl_pid="" swift_greeter_pid=""
finish() {
    for pid in "$greeter_pid" "$tls_vessel_pid" "$openssl_pid" "$swift_greeter_pid"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    "$root/scripts/system.sh" stop quiet
}
trap finish EXIT

# Every run from empty databases, so that runs compare (bookings grow the vessels' documents).
"$root/scripts/system.sh" stop quiet
rm -rf "$run" && mkdir -p "$run/results"
say "== Starting Shippy (release build) under $run"
# The run's one shipper books a 1 kg container per call, hundreds in a 10 s run and more in longer ones: the default
# fair-use quota (1,000 containers) would refuse some, and the figures would be of refusals.
QUOTA_CONTAINERS=1000000000 "$root/scripts/system.sh" start >&2
bin=$(swift build -c release --show-bin-path)

greeter_args=()
if [ -d "$reference" ] && command -v apt-get >/dev/null; then
    say "== Building the grpc-go greeter from $reference (Debian's packaged grpc-go)"
    rm -rf "$run/perf-reference" && cp -r "$reference" "$run/perf-reference" && chmod -R u+w "$run/perf-reference"
    if bash "$run/perf-reference/setup-go-greeter.sh" >"$run/logs/go-greeter-build.log" 2>&1; then
        "$run/perf-reference/bin/go-greeter" -addr "127.0.0.1:$greeter_port" >"$run/logs/go-greeter.log" 2>&1 &
        greeter_pid=$!
        greeter_args=(--greeter "127.0.0.1:$greeter_port" --process "go-greeter=$greeter_pid")
    else
        say "   the greeter did not build (see $run/logs/go-greeter-build.log); the table goes without it"
    fi
else
    say "== No reference greeters at $reference: the table goes without them"
fi

# The bare grpc-swift-2 greeter: our framework's own floor, beside which Health/Check is set. Built once, outside
# the run's folder (about 14 minutes cold on 2 cores; seconds after).
swift_greeter=$root/.local/perf-reference/swift-greeter
if [ -d "$reference/swift-greeter" ]; then
    say "== Building the bare grpc-swift-2 greeter from $reference (once: about 14 minutes)"
    if [ ! -f "$swift_greeter/Package.swift" ]; then
        mkdir -p "$swift_greeter" && cp -r "$reference/swift-greeter/." "$swift_greeter" && chmod -R u+w "$swift_greeter"
    fi
    if (cd "$swift_greeter" && swift build -c release --product GreeterServer) >"$run/logs/swift-greeter-build.log" 2>&1
    then
        "$(cd "$swift_greeter" && swift build -c release --show-bin-path)/GreeterServer" "$swift_greeter_port" \
            >"$run/logs/swift-greeter.log" 2>&1 &
        swift_greeter_pid=$!
        wait_port "the grpc-swift-2 greeter" "$swift_greeter_port" "$run/logs/swift-greeter.log"
    else
        say "   the grpc-swift-2 greeter did not build (see $run/logs/swift-greeter-build.log); the table goes without it"
    fi
fi

# Each service restarted as it runs (same command, same environment), timed from its process's start to
# SERVING while its database already answers; then its memory after five idle seconds.
declare -A ports=([vessel-service]=$SHIPPY_VESSEL_PORT [user-service]=$SHIPPY_USER_PORT
    [consignment-service]=$SHIPPY_CONSIGNMENT_PORT [email-service]=$SHIPPY_EMAIL_PORT)
: >"$run/results/startup.txt"
for service in vessel-service user-service consignment-service email-service; do
    pid=$(cat "$run/$service.pid")
    environment_of "$pid"
    mapfile -d '' command <"/proc/$pid/cmdline"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    env -i "${environment[@]}" "${command[@]}" >>"$run/logs/$service.log" 2>&1 &
    pid=$!
    echo "$pid" >"$run/$service.pid"
    ms=$("$bin/shippy-bench" serving-time --pid "$pid" --address "127.0.0.1:${ports[$service]}")
    sleep 5
    # Resident kB, and of it: anonymous (heap, stacks), and the proportional share (pages shared with the other
    # services, Swift's libraries, counted once across them).
    read -r rss anonymous pss < <(awk '/^Rss:/ { r = $2 } /^Anonymous:/ { a = $2 } /^Pss:/ { p = $2 }
        END { print r, a, p }' "/proc/$pid/smaps_rollup")
    say "   $service: SERVING $ms ms after its start; resident $((rss / 1024)) MB idle"
    echo "$service $ms $rss $anonymous $pss" >>"$run/results/startup.txt"
done

# The floor under a C load generator (h2load, from Debian's nghttp2-client): Health/Check on each service beside
# the grpc-go and grpc-swift-2 greeters, interleaved, three rounds; calls/s that shippy-bench's own client does not cap.
: >"$run/results/h2load.txt"
if command -v h2load >/dev/null || apt-get install -y -q nghttp2-client >/dev/null 2>&1; then
    say "== Health/Check and the greeter under h2load (3 rounds, 60,000 calls each)"
    printf '\0\0\0\0\0' >"$run/health-request.bin"  # an empty HealthCheckRequest, gRPC-framed
    printf '\0\0\0\0\7\n\5world' >"$run/hello-request.bin"  # HelloRequest{name: "world"}
    targets=("vessel-service $SHIPPY_VESSEL_PORT grpc.health.v1.Health/Check health-request.bin"
        "user-service $SHIPPY_USER_PORT grpc.health.v1.Health/Check health-request.bin"
        "consignment-service $SHIPPY_CONSIGNMENT_PORT grpc.health.v1.Health/Check health-request.bin")
    if [ -n "$greeter_pid" ]; then targets+=("go-greeter $greeter_port helloworld.Greeter/SayHello hello-request.bin"); fi
    if [ -n "$swift_greeter_pid" ]; then
        targets+=("swift-greeter $swift_greeter_port helloworld.Greeter/SayHello hello-request.bin")
    fi
    for round in 1 2 3; do
        for target in "${targets[@]}"; do
            read -r name port path body <<<"$target"
            rate=$(grpc_load 60000 "$port" "$path" "$body" | awk '/^finished in/ { print $4 }')
            say "   round $round, $name: ${rate:-?} calls/s"
            echo "$name ${rate:-0}" >>"$run/results/h2load.txt"
        done
    done
    # The floor's profile: vessel-service's Health/Check and the bare grpc-swift-2 greeter, each under the same h2load
    # while perf samples that process for 3 s: what the framework costs, beside what we add to it.
    if command -v perf >/dev/null && [ -n "$swift_greeter_pid" ]; then
        say "== The floor's profile: vessel-service and the grpc-swift-2 greeter under h2load, 3 s each under perf"
        mkdir -p "$run/profiles"
        for target in "vessel-service $SHIPPY_VESSEL_PORT grpc.health.v1.Health/Check health-request.bin" \
            "swift-greeter $swift_greeter_port helloworld.Greeter/SayHello hello-request.bin"; do
            read -r name port path body <<<"$target"
            pid=$swift_greeter_pid
            if [ "$name" = vessel-service ]; then pid=$(cat "$run/vessel-service.pid"); fi
            grpc_load 10000000 "$port" "$path" "$body" >/dev/null 2>&1 &
            load_pid=$!
            sleep 1
            perf record -q -F 999 -p "$pid" -o "$run/profiles/floor-$name.data" -- sleep 3 2>>"$run/logs/perf.log" \
                || say "   $name: perf record failed (see $run/logs/perf.log)"
            kill "$load_pid" 2>/dev/null || true
            wait "$load_pid" 2>/dev/null || true
            top_symbols "$run/profiles/floor-$name.data" "$run/results/profile-floor-$name.txt"
        done
    fi
fi

processes=()
for service in vessel-service user-service consignment-service email-service; do
    processes+=(--process "$service=$(cat "$run/$service.pid")")
done
processes+=(--process "postgres=$(cat "$SHIPPY_SERVERS_DIR/postgres.pid")")
processes+=(--process "mongod=$(cat "$SHIPPY_SERVERS_DIR/mongo.pid")")
processes+=(--process "nats=$(cat "$SHIPPY_SERVERS_DIR/nats.pid")")

say "== Scenarios"
# The run's admin registers a vessel of its own, so that bookings never fill the fleet's.
SHIPPY_TOKEN=$(admin_token "$root/scripts/system.sh" "$bin" "${prefix}admin@bench.example.com")
export SHIPPY_TOKEN
shippy_bench() {
    USER_SERVICE_ADDRESS=127.0.0.1:$SHIPPY_USER_PORT VESSEL_SERVICE_ADDRESS=127.0.0.1:$SHIPPY_VESSEL_PORT \
    CONSIGNMENT_SERVICE_ADDRESS=127.0.0.1:$SHIPPY_CONSIGNMENT_PORT "$bin/shippy-bench" "$@"
}
# shellcheck disable=SC2086
shippy_bench --prefix "$prefix" --duration "${SHIPPY_BENCH_DURATION:-10}" "${processes[@]}" "${greeter_args[@]}" \
    --json "$run/results/scenarios.json" ${SHIPPY_BENCH_ARGS:-} | tee "$run/results/scenarios.txt" \
    || say "   some calls failed: the table counts them"

# Each call beside its server's Health/Check at the same fixed rate (open loop), the ratios the targets and the gate
# use. In a closed loop the rate is whatever the call allows, and a server's CPU per call falls as the rate rises (one
# wake-up serves more calls): Health/Check at 4,000 calls/s against FindAvailable at 800, bounded by the MongoDB
# stand-in, counted that difference as FindAvailable's. Bookings, which the stand-in bounds to a few dozen a second,
# are set beside Health/Check at a rate of their own.
say "== Each call beside Health/Check at the same rate (${matched_rate:=200}/s; bookings ${booking_rate:=10}/s)"
sleep 2
shippy_bench health-vessel find-available health-user validate-token health-consignment token-check forged-token \
    get-consignments --rate "$matched_rate" --prefix "${prefix}matched-" --duration 8 "${processes[@]}" \
    --json "$run/results/matched.json" >"$run/results/matched.txt" || say "   some calls failed at $matched_rate/s"
shippy_bench health-consignment create-consignment --rate "$booking_rate" --prefix "${prefix}matched-booking-" \
    --duration 8 "${processes[@]}" --json "$run/results/matched-booking.json" >"$run/results/matched-booking.txt" \
    || say "   some calls failed at $booking_rate/s"

# Where each call's CPU goes: the call scenarios again under perf (sampling our four services only), the symbols
# that take the most of it. A pass of its own, so that sampling does not weigh on the figures above; perf starts once
# the scenario measures (its first progress line), so that the run's sign-ups (bcrypt) and warm-up are left out.
if command -v perf >/dev/null; then
    say "== Profiles: each call scenario for 3 s of its calls under perf record"
    mkdir -p "$run/profiles"
    services=$(for service in vessel-service user-service consignment-service email-service; do
        cat "$run/$service.pid"; done | paste -sd,)
    for scenario in health-vessel validate-token find-available get-consignments token-check forged-token \
        create-consignment; do
        progress=$run/profiles/$scenario.progress
        shippy_bench "$scenario" --prefix "${prefix}profile-$scenario-" --duration 5 --warm-up 1 >"$progress" 2>&1 &
        bench_pid=$!
        for _ in $(seq 1 300); do
            if grep -q "^  *$scenario: 1 s," "$progress" || ! kill -0 "$bench_pid" 2>/dev/null; then break; fi
            sleep 0.1
        done
        perf record -q -F 999 -p "$services" -o "$run/profiles/$scenario.data" -- sleep 3 2>>"$run/logs/perf.log" \
            || say "   $scenario: perf record failed (see $run/logs/perf.log)"
        wait "$bench_pid" || say "   $scenario: some calls failed while profiled"
        top_symbols "$run/profiles/$scenario.data" "$run/results/profile-$scenario.txt"
        say "   $scenario: $(wc -l <"$run/results/profile-$scenario.txt") symbols above 1 %"
    done
fi

# The MongoDB driver's own floor: FindAvailable's query through libmongoc alone, on the same server
# (Benchmarks/mongo-floor.c), for the CPU a MongoDB operation costs in vessel-service against the driver's.
say "== FindAvailable's query through libmongoc alone (Benchmarks/mongo-floor.c)"
# shellcheck disable=SC2046
if cc -O2 "$root/Benchmarks/mongo-floor.c" $(pkg-config --cflags --libs libmongoc-1.0) -o "$run/mongo-floor" \
    2>"$run/logs/mongo-floor-build.log"; then
    # shellcheck disable=SC1091
    SHIPPY_MONGO_URL=$(. "$SHIPPY_SERVERS_DIR/env" && echo "$SHIPPY_MONGO_URL")
    "$run/mongo-floor" "$SHIPPY_MONGO_URL" shippy 5000 >"$run/results/mongo-floor.json" \
        || say "   the floor was not measured (see above)"
else
    say "   Benchmarks/mongo-floor.c did not build (see $run/logs/mongo-floor-build.log)"
fi

# The image and its executables, when make test-containers has built localhost/shippy:latest on this machine.
"$root/scripts/containers.sh" sizes >"$run/results/image.txt" 2>>"$run/logs/image-sizes.log" \
    || say "   no image sizes: make test-containers builds localhost/shippy:latest"

# What mutual TLS costs per call: Health/Check on the plaintext vessel-service and on a second one that takes mutual
# TLS only (same settings and database; the development identities system.sh made), interleaved, three rounds.
# Connections are made once, so this is TLS's cost per call; a handshake, a connection's, is measured next.
say "== Health/Check in plaintext and over mutual TLS (3 interleaved rounds)"
plain_vessel_pid=$(cat "$run/vessel-service.pid")
environment_of "$plain_vessel_pid" PLAINTEXT PORT METRICS_PORT
env -i "${environment[@]}" PORT="$tls_vessel_port" METRICS_PORT=0 TLS_CERTIFICATE="$run/tls/vessel-service.pem" \
    TLS_KEY="$run/tls/vessel-service-key.pem" TLS_CA="$run/tls/ca.pem" "$bin/vessel-service" \
    >"$run/logs/vessel-service-tls.log" 2>&1 &
tls_vessel_pid=$!
client_tls=(TLS_CERTIFICATE="$run/tls/shippy-cli.pem" TLS_KEY="$run/tls/shippy-cli-key.pem" TLS_CA="$run/tls/ca.pem")
env "${client_tls[@]}" "$bin/shippy-bench" serving-time --pid "$tls_vessel_pid" --address "127.0.0.1:$tls_vessel_port" \
    >/dev/null
for round in 1 2 3; do
    for security in plaintext tls; do
        port=$SHIPPY_VESSEL_PORT pid=$plain_vessel_pid settings=()
        if [ "$security" = tls ]; then port=$tls_vessel_port pid=$tls_vessel_pid settings=("${client_tls[@]}"); fi
        # health-vessel calls vessel-service only; the other addresses name the same server and stay unused.
        env "${settings[@]}" "$bin/shippy-bench" health-vessel --vessel-service "127.0.0.1:$port" \
            --user-service "127.0.0.1:$port" --consignment-service "127.0.0.1:$port" --process "vessel-service=$pid" \
            --duration "${SHIPPY_BENCH_DURATION:-10}" --json "$run/results/tls-$security-$round.json" >/dev/null
        say "   round $round, $security: done"
    done
done

# What a mutual TLS handshake costs a server: new connections for a while (openssl s_time: each a full handshake with
# the CLI's certificate, then closed), and the server's CPU from /proc before and after. Beside the TLS
# vessel-service, openssl s_server with the same certificates: the same handshake in another TLS library.
say "== Mutual TLS handshakes: vessel-service, and openssl s_server beside it"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
handshakes() {  # NAME PID PORT
    local before made after
    before=$(cpu_ticks "$2")
    made=$(openssl s_time -connect "127.0.0.1:$3" -cert "$run/tls/shippy-cli.pem" -key "$run/tls/shippy-cli-key.pem" \
        -CAfile "$run/tls/ca.pem" -new -time "${SHIPPY_BENCH_DURATION:-10}" 2>/dev/null \
        | awk '/connections in .* real seconds/ {print $1}')
    after=$(cpu_ticks "$2")
    printf '{"server": "%s", "handshakes": %d, "cpuSeconds": %s}\n' "$1" "${made:-0}" \
        "$(awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {print ticks / hz}')" \
        >"$run/results/handshakes-$1.json"
}
handshakes vessel-service "$tls_vessel_pid" "$tls_vessel_port"
openssl s_server -accept "$openssl_port" -cert "$run/tls/vessel-service.pem" -key "$run/tls/vessel-service-key.pem" \
    -CAfile "$run/tls/ca.pem" -Verify 1 -quiet </dev/null >"$run/logs/openssl-s_server.log" 2>&1 &
openssl_pid=$!
wait_port "openssl s_server" "$openssl_port" "$run/logs/openssl-s_server.log"
handshakes openssl-s_server "$openssl_pid" "$openssl_port"

# The committed report's ratios are what this run is compared with: any more than 25 % worse is named, and the
# exit status is 1 (the figures move by up to ±25 % between runs here, so only ratios within a run compare).
git show HEAD:BENCHMARKS.md >"$run/committed-BENCHMARKS.md" 2>/dev/null || : >"$run/committed-BENCHMARKS.md"
status=0
python3 "$root/scripts/bench_report.py" --results "$run/results" --commit "$(git rev-parse --short HEAD)" \
    --committed "$run/committed-BENCHMARKS.md" --picture "$root/BENCHMARKS.svg" >"$root/BENCHMARKS.md" || status=$?
say "== Wrote BENCHMARKS.md and BENCHMARKS.svg"
[ "$status" -eq 0 ]  # the report's status: 1 when a ratio is more than 25 % worse than the committed one
