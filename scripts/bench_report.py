#!/usr/bin/env python3
"""Writes BENCHMARKS.md (to stdout) from one `make bench` run: shippy-bench's JSON (scenarios.json) and the
start-up figures of scripts/bench.sh (startup.txt). Each call's CPU is set beside Health/Check on the same
server in the same run, and each target of the performance work is said to be met or missed, by how much."""
import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess

parser = argparse.ArgumentParser()
parser.add_argument("--results", required=True, type=pathlib.Path)
parser.add_argument("--commit", required=True)
args = parser.parse_args()

# When the scenarios ran (the results file's time), not when this report was written.
run_date = datetime.datetime.fromtimestamp((args.results / "scenarios.json").stat().st_mtime,
                                           datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
runs = {run["scenario"]: run for run in json.loads((args.results / "scenarios.json").read_text())}
startup = {}
for line in (args.results / "startup.txt").read_text().splitlines():
    name, ms, rss_kb = line.split()
    startup[name] = (float(ms), int(rss_kb) / 1024)

h2load = {}
h2load_file = args.results / "h2load.txt"
for line in (h2load_file.read_text().splitlines() if h2load_file.exists() else []):
    name, rate = line.split()
    h2load.setdefault(name, []).append(float(rate))
h2load = {name: statistics.median(rates) for name, rates in h2load.items()}

SERVICE = {"user": "user-service", "vessel": "vessel-service", "consignment": "consignment-service",
           "greeter": "go-greeter"}


def cpu(scenario, process):
    """CPU µs per call of `process` in `scenario`, or None when either was not measured."""
    run = runs.get(scenario)
    return run and run["cpuMicrosecondsPerCall"].get(process)


def health(server):
    return cpu(f"health-{server}", SERVICE[server])


def num(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.machine())
    memory = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()
    swift = next((line for line in swift if "Swift version" in line), "swift ?")
    return f"{os.cpu_count()} cores ({model}), {memory / 1048576:.0f} GiB, Linux {platform.release()}, {swift}"


lines = [
    "# Shippy benchmarks",
    "",
    "Written by `make bench` (scripts/bench.sh, scripts/bench_report.py): a release build started natively,",
    "each `shippy-bench` scenario run against it on the same machine. CPU per call is read from",
    "/proc/PID/task/*/schedstat of each process (its children included, so PostgreSQL's backends count as",
    "postgres), over the measured interval, divided by the calls of the scenario.",
    "",
    f"- Machine: {machine()}",
    f"- Date: {run_date}",
    f"- Commit: {args.commit}",
    "",
    "## Calls",
    "",
    "| scenario | call | calls/s | p50 / p90 / p99 / p99.9 ms | errors | CPU µs per call, by process "
    "| × Health/Check on that server |",
    "|---|---|---|---|---|---|---|",
]
for name, run in runs.items():
    server = SERVICE.get(run["server"])
    floor = health(run["server"]) if run["server"] in SERVICE and run["server"] != "greeter" else None
    cpus = ", ".join(f"{process} {value:,.0f}" for process, value in sorted(run["cpuMicrosecondsPerCall"].items())
                     if value >= 0.5)
    own = run["cpuMicrosecondsPerCall"].get(server)
    ratio = f"{own / floor:.2f}×" if own is not None and floor else "–"
    for call, figures in sorted(run["calls"].items()):
        errors = ", ".join(f"{code} {count}" for code, count in sorted(figures["errors"].items())) or "0"
        lines.append(
            f"| {name} | {call} | {num(figures['callsPerSecond'])} | {figures['p50']:.2f} / {figures['p90']:.2f} / "
            f"{figures['p99']:.2f} / {figures['p999']:.2f} | {errors} | {cpus or '–'} | {ratio} |")
        cpus, ratio = "″", "″"
lines.append("")

# The targets of the performance work (issue "A built-in load generator and benchmark").
targets = []


def target(what, value, limit, met, why_missed=""):
    verdict = "met" if met else f"**missed** {why_missed}"
    targets.append(f"| {what} | {value} | {limit} | {verdict} |")


def ratio_target(what, scenario, server, limit):
    own, floor = cpu(scenario, SERVICE[server]), health(server)
    if own is None or floor is None:
        return target(what, "not measured", f"≤ {limit}× Health/Check", False, "(not measured)")
    value = own / floor
    target(what, f"{own:,.0f} µs = {value:.2f}× Health/Check ({floor:,.0f} µs)", f"≤ {limit}×", value <= limit,
           f"by {value / limit - 1:.0%}")


ratio_target("ValidateToken", "validate-token", "user", 1.3)
ratio_target("Token check of an authenticated call (GetConsignments refused after the check)", "token-check",
             "consignment", 1.3)
own, floor = cpu("find-available", "vessel-service"), health("vessel")
if own is not None and floor is not None:
    target("FindAvailable in vessel-service", f"{own:,.0f} µs = Health/Check + {own - floor:,.0f} µs",
           "≤ Health/Check + 150 µs", own - floor <= 150, f"by {own - floor - 150:,.0f} µs")
consignment, vessel = cpu("create-consignment", "consignment-service"), cpu("create-consignment", "vessel-service")
if consignment is not None and vessel is not None and health("consignment"):
    total, floor = consignment + vessel, health("consignment")
    target("CreateConsignment, summed over consignment-service and vessel-service",
           f"{total:,.0f} µs = {total / floor:.2f}× Health/Check of consignment-service", "≤ 3×",
           total / floor <= 3, f"by {total / floor / 3 - 1:.0%}")
auth = runs.get("auth")
if auth and auth.get("bcryptCeilingPerSecond"):
    rate, ceiling = auth["calls"]["Auth"]["callsPerSecond"], auth["bcryptCeilingPerSecond"]
    target("Auth against the machine's bcrypt ceiling", f"{rate:.1f}/s of {ceiling:.1f}/s = {rate / ceiling:.2f}",
           "≥ 0.9", rate / ceiling >= 0.9, f"by {1 - rate / ceiling / 0.9:.0%}")
alone, beside = runs.get("reads"), runs.get("auth-under-reads")
if beside and beside.get("bcryptCeilingPerSecond") and "Auth" in beside["calls"]:
    rate, ceiling = beside["calls"]["Auth"]["callsPerSecond"], beside["bcryptCeilingPerSecond"]
    target("Auth at full speed while the reads run beside it", f"{rate:.1f}/s of {ceiling:.1f}/s = {rate / ceiling:.2f}",
           "≥ 0.9", rate / ceiling >= 0.9, f"by {1 - rate / ceiling / 0.9:.0%}")
if alone and beside:
    for call in sorted(alone["calls"]):
        if call in beside["calls"]:
            a, b = alone["calls"][call]["p99"], beside["calls"][call]["p99"]
            target(f"{call} p99 while logins run at full speed", f"{b:.2f} ms (alone {a:.2f} ms) = {b / a:.2f}×",
                   "≤ 2×", b <= 2 * a, f"by {b / a / 2 - 1:.0%}")
# Bursts (issue "The edge"): served within their deadlines, or refused at once.
burst = runs.get("signup-burst")
if burst:
    signups = burst["calls"].get("Create (sign-up)", {"calls": 0, "errors": {}, "p999": 0})
    served = signups["calls"] - sum(signups["errors"].values())
    target("40 sign-ups at once with 60 s deadlines (`signup-burst`): all served",
           f"{served} of {signups['calls']} served, the last after {signups['p999'] / 1000:.1f} s", "all 40",
           served == 40 == signups["calls"], f"({signups['errors']})")
flood = runs.get("login-flood")
if flood:
    calls = flood["calls"]
    answered = sum(call["calls"] - sum(call["errors"].values()) for call in calls.values())
    failed = {code: count for call in calls.values() for code, count in call["errors"].items()}
    slowest = max(call["p999"] for call in calls.values())
    served = calls.get("Auth", {}).get("calls", 0)
    peak = flood["processes"].get("user-service", {}).get("residentMegabytesPeak")
    target("300 logins at once with 2 s deadlines (`login-flood`): each served or refused within its deadline",
           f"{served} served, {calls.get('Auth (refused: busy)', {}).get('calls', 0)} refused as busy, "
           f"{sum(failed.values())} not answered in time; the slowest answer {slowest:.0f} ms; user-service "
           f"{num(peak, 1)} MB resident at most", "each within 2,000 ms",
           answered == 300 and slowest <= 2000, f"({failed})")
quiet, beside = runs.get("auth"), runs.get("logins-beside-flood")
if quiet and beside and "Auth" in quiet["calls"] and "Auth" in beside["calls"]:
    a, b = quiet["calls"]["Auth"]["p99"], beside["calls"]["Auth"]["p99"]
    target("A real login's p99 beside a flood of wrong ones from another client (`logins-beside-flood`)",
           f"{b:.0f} ms (quiet, `auth`: {a:.0f} ms) = {b / a:.2f}×", "≤ 2×", b <= 2 * a, f"by {b / a / 2 - 1:.0%}")
for service, (ms, rss) in sorted(startup.items()):
    target(f"{service}: SERVING after start, its database answering", f"{ms:.0f} ms", "≤ 200 ms", ms <= 200,
           f"by {ms - 200:.0f} ms")
    target(f"{service}: resident memory idle", f"{rss:.1f} MB", "≤ 40 MB", rss <= 40, f"by {rss - 40:.1f} MB")
shippers = runs.get("shippers")
if shippers:
    for service in ("vessel-service", "user-service", "consignment-service", "email-service"):
        usage = shippers["processes"].get(service)
        if usage:
            peak = usage["residentMegabytesPeak"]
            target(f"{service}: resident memory under `shippers`", f"{peak:.1f} MB", "≤ 100 MB", peak <= 100,
                   f"by {peak - 100:.1f} MB")
go_rate = h2load.get("go-greeter")
if not go_rate:
    target("Health/Check against the grpc-go greeter", "not measured", "≥ 0.4×", False,
           "(not measured: no greeter; point SHIPPY_PERF_REFERENCE at ../shared/perf-reference, and h2load from "
           "Debian's nghttp2-client)")
for service in ("vessel-service", "user-service", "consignment-service"):
    if go_rate and service in h2load:
        rate = h2load[service]
        target(f"Health/Check on {service} against the grpc-go greeter (h2load)",
               f"{rate:,.0f}/s of {go_rate:,.0f}/s = {rate / go_rate:.2f}×", "≥ 0.4×", rate / go_rate >= 0.4,
               f"by {1 - rate / go_rate / 0.4:.0%}")

if h2load:
    lines += ["## The floor: Health/Check beside a bare grpc-go greeter", "",
              "h2load (16 connections × 10 streams, 60,000 calls, three interleaved rounds, the median): a load",
              "generator in C, so that the servers, not the client, set the pace. h2load counts HTTP 200 and does",
              "not read `grpc-status`.", "", "| server | calls/s | × grpc-go greeter |", "|---|---|---|"]
    for name, rate in h2load.items():
        lines.append(f"| {name} | {rate:,.0f} | {rate / go_rate:.2f}× |" if go_rate else f"| {name} | {rate:,.0f} | – |")
    lines.append("")

# What mutual TLS costs per call (scripts/bench.sh's last step): the same Health/Check on two vessel-services.
tls = {}
for path in sorted(args.results.glob("tls-*-*.json")):
    security = path.name.split("-")[1]
    for run in json.loads(path.read_text()):
        figures = run["calls"]["Health/Check"]
        tls.setdefault(security, []).append((run["cpuMicrosecondsPerCall"].get("vessel-service"),
                                             figures["callsPerSecond"], figures["p50"]))
if {"plaintext", "tls"} <= tls.keys():
    lines += ["## What mutual TLS costs per call", "",
              "Health/Check on vessel-service in plaintext and on a second vessel-service that takes mutual TLS only",
              "(its development identity; shippy-bench presents one too), three interleaved rounds, the median.",
              "Connections are made once, so this is the cost per call of encrypting; a handshake is paid per",
              "connection and is not in it (it is below).", "",
              "| | calls/s | p50 ms | vessel-service CPU µs per call |", "|---|---|---|---|"]
    median = {security: [statistics.median(v[i] for v in values if v[i] is not None) for i in range(3)]
              for security, values in tls.items()}
    for security in ("plaintext", "tls"):
        cpu_us, rate, p50 = median[security]
        lines.append(f"| {'mutual TLS' if security == 'tls' else 'plaintext'} | {rate:,.0f} | {p50:.2f} | {cpu_us:,.1f} |")
    extra = median["tls"][0] - median["plaintext"][0]
    lines += ["", f"Mutual TLS adds {extra:,.1f} µs of vessel-service's CPU per call "
              f"({extra / median['plaintext'][0]:+.0%}).", ""]

# What a mutual TLS handshake costs a server (scripts/bench.sh's last step): new connections, each a full handshake.
handshakes = [json.loads(path.read_text()) for path in sorted(args.results.glob("handshakes-*.json"))]
if any(h["handshakes"] for h in handshakes):
    lines += ["## What a mutual TLS handshake costs", "",
              "New connections for the scenarios' duration (`openssl s_time -new`: each a full handshake with the",
              "CLI's certificate, then closed), to the vessel-service that takes mutual TLS and to `openssl s_server`",
              "with the same certificates; the server's CPU, from /proc, per connection: its handshake and the",
              "connection's own setup (for vessel-service an HTTP/2 connection, which gRPC's setup adds to). A",
              "connection is made once and carries many calls, so this is paid per connection, not per call.", "",
              "| server | handshakes | CPU ms per connection |", "|---|---|---|"]
    for h in sorted(handshakes, key=lambda h: h["server"] != "vessel-service"):
        per = f"{1000 * h['cpuSeconds'] / h['handshakes']:.2f}" if h["handshakes"] else "–"
        lines.append(f"| {h['server']} | {h['handshakes']:,} | {per} |")
    lines.append("")

lines += ["## Targets", "",
          "Each missed target, and why, is taken up under \"Where the time goes, and what is missed\" below.", "",
          "| target | this run | limit | |", "|---|---|---|---|", *targets, ""]
notes = pathlib.Path(__file__).resolve().parent.parent / "docs" / "performance.md"
if notes.exists():
    lines += [notes.read_text().rstrip(), ""]
print("\n".join(lines))
