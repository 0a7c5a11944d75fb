#!/usr/bin/env python3
"""`make bench-gateway`: what the HTTP edge adds to a call. A release build of Shippy started natively on ports of
its own; one user's token; then, interleaved for ROUNDS rounds, h2load (Debian's nghttp2-client) makes the same
call both ways, with the same 16 concurrent clients:

    grpc  consignment.ShippingService/GetConsignments straight to consignment-service (HTTP/2, gRPC framing)
    http  GET /v1/consignments through api-gateway (HTTP/1.1), which makes that gRPC call

The call is the cheap one (page_size -1: the token is verified, then the call is refused before MongoDB), so
what differs is the edge. Printed per way, median of the rounds: calls/s, mean latency, and CPU µs per call of
the gateway and of consignment-service (from /proc/PID/stat over the run).

    SHIPPY_BENCH_CALLS  calls per round and way (20000)    SHIPPY_BENCH_ROUNDS  rounds (3)
"""
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import urllib.request

root = pathlib.Path(__file__).resolve().parent.parent
run = root / ".local/bench-gateway"
calls = int(os.environ.get("SHIPPY_BENCH_CALLS", "20000"))
rounds = int(os.environ.get("SHIPPY_BENCH_ROUNDS", "3"))
ports = {"CONSIGNMENT": 50451, "VESSEL": 50452, "USER": 50453, "EMAIL": 50454}
gateway = 8451
# In plaintext, explicitly: h2load calls consignment-service straight, and has no client certificate.
env = dict(os.environ, SWIFT_DETERMINISTIC_HASHING="1", SHIPPY_BUILD_CONFIGURATION="release", SHIPPY_PLAINTEXT="1",
           SHIPPY_RUN_DIR=str(run / "run"), SHIPPY_SERVERS_DIR=str(run / "run/servers"), SHIPPY_PROMETHEUS_PORT="0",
           SHIPPY_GATEWAY_PORT=str(gateway), SHIPPY_GATEWAY_METRICS_PORT="9455",
           **{f"SHIPPY_{name}_PORT": str(port) for name, port in ports.items()},
           **{f"SHIPPY_{name}_METRICS_PORT": str(port - 50451 + 9451) for name, port in ports.items()})
ticks = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def post(path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{gateway}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=30))


def h2load(arguments, pids):
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    out = subprocess.run(["h2load", "-n", str(calls), "-c", "16", "-m", "1", "-t", "1", *arguments],
                         capture_output=True, text=True, check=True).stdout
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    mean_ms = float(mean[:-2]) if mean.endswith("ms") else float(mean[:-2]) / 1000 if mean.endswith("us") else float(mean[:-1]) * 1000
    cpu = {name: (after[name] - before[name]) * 1e6 / done for name in pids}
    return rate, mean_ms, cpu


def main():
    if subprocess.run(["sh", "-c", "command -v h2load"], capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "nghttp2-client"], check=True, capture_output=True)
    run.mkdir(parents=True, exist_ok=True)
    system = str(root / "scripts/system.sh")
    subprocess.run([system, "stop"], env=env, capture_output=True)
    started = subprocess.run([system, "start"], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"bench-gateway: the system did not start:\n{started.stdout[-2000:]}{started.stderr[-2000:]}")
    try:
        email = f"bench-gateway-{os.getpid()}@bench.example.com"
        post("/v1/users", {"name": "Bench", "email": email, "password": "bench password"})
        token = post("/v1/sessions", {"email": email, "password": "bench password"})["token"]
        pids = {name: int((run / f"run/{name}.pid").read_text().split()[0]) for name in ("api-gateway", "consignment-service")}
        # GetRequest{page_size: -1}, gRPC-framed: field 1 as a ten-byte varint.
        message = bytes([0x08]) + bytes([0xFF] * 9) + bytes([0x01])
        (run / "get-request.bin").write_bytes(bytes([0, 0, 0, 0, len(message)]) + message)
        ways = {
            "grpc": ["-H", "content-type: application/grpc", "-H", "te: trailers", "-H", f"authorization: Bearer {token}",
                     "-d", str(run / "get-request.bin"),
                     f"http://127.0.0.1:{ports['CONSIGNMENT']}/consignment.ShippingService/GetConsignments"],
            "http": ["--h1", "-H", f"authorization: Bearer {token}",
                     f"http://127.0.0.1:{gateway}/v1/consignments?page_size=-1"],
        }
        results = {way: [] for way in ways}
        for _ in range(rounds):
            for way, arguments in ways.items():
                results[way].append(h2load(arguments, pids))
        print(f"bench-gateway: {calls:,} calls per way and round, 16 clients, median of {rounds} rounds "
              f"(GetConsignments refused after the token check)")
        print("| way | calls/s | mean latency ms | api-gateway CPU µs/call | consignment-service CPU µs/call |")
        print("|---|---|---|---|---|")
        for way, measured in results.items():
            rate = statistics.median(r[0] for r in measured)
            mean = statistics.median(r[1] for r in measured)
            gw = statistics.median(r[2]["api-gateway"] for r in measured)
            cs = statistics.median(r[2]["consignment-service"] for r in measured)
            label = "gRPC, straight" if way == "grpc" else "HTTP, through the gateway"
            print(f"| {label} | {rate:,.0f} | {mean:.2f} | {gw:,.0f} | {cs:,.0f} |")
    finally:
        subprocess.run([system, "stop"], env=env, capture_output=True)


if __name__ == "__main__":
    main()
