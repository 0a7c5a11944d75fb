#!/usr/bin/env python3
"""Writes BENCHMARKS.md (to stdout) from one `make bench` run: shippy-bench's JSON (scenarios.json), the
start-up figures of scripts/bench.sh (startup.txt), its profiles, the driver's floor and the image's sizes. Each
call's CPU is set beside Health/Check on the same server at the same rate (matched.json, matched-booking.json), and
each target of the performance work is said to be met or missed, by how much. --picture writes the CPU per call by
process as an SVG bar chart; --committed compares each ratio with the committed report's and exits 1 when one is
more than 25 % worse."""
import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--results", required=True, type=pathlib.Path)
parser.add_argument("--commit", required=True)
parser.add_argument("--committed", type=pathlib.Path, help="the committed BENCHMARKS.md, to compare ratios with")
parser.add_argument("--picture", type=pathlib.Path, help="where to write the CPU per call chart (SVG)")
args = parser.parse_args()
# A ratio moved by more than this between two runs is named: the figures move by up to ±25 % from run to run here.
REGRESSION = 0.25

# When the scenarios ran (the results file's time), not when this report was written.
run_date = datetime.datetime.fromtimestamp((args.results / "scenarios.json").stat().st_mtime,
                                           datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
runs = {run["scenario"]: run for run in json.loads((args.results / "scenarios.json").read_text())}
startup = {}
for line in (args.results / "startup.txt").read_text().splitlines():
    name, ms, *kb = line.split()  # resident kB, then (since 2026-12-06) anonymous and proportional kB
    startup[name] = (float(ms), *(int(value) / 1024 for value in kb))

h2load = {}
h2load_file = args.results / "h2load.txt"
for line in (h2load_file.read_text().splitlines() if h2load_file.exists() else []):
    name, rate = line.split()
    h2load.setdefault(name, []).append(float(rate))
h2load = {name: statistics.median(rates) for name, rates in h2load.items()}


def read_json(name):
    path = args.results / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


mongo_floor = read_json("mongo-floor.json")
sizes = {}  # "image" and each executable's path: bytes (scripts/containers.sh sizes)
image_file = args.results / "image.txt"
for line in (image_file.read_text().splitlines() if image_file.exists() else []):
    kind, *rest = line.split()
    if kind == "image":
        sizes["image"] = int(rest[0])
    elif kind == "executable":
        sizes[rest[0]] = int(rest[1])

SERVICE = {"user": "user-service", "vessel": "vessel-service", "consignment": "consignment-service",
           "greeter": "go-greeter"}


# Every ratio of this run, for the comparison with the committed report: name -> (value, whether higher is worse).
ratios = {}


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
    "Each scenario in a closed loop (its workers call again as soon as an answer comes), so its rate is what the call",
    "allows. CPU per call is compared only at equal rates, in the next section: at a higher rate one wake-up of a",
    "server serves more calls, and its CPU per call falls.",
    "",
    "| scenario | call | calls/s | p50 / p90 / p99 / p99.9 ms | errors | CPU µs per call, by process |",
    "|---|---|---|---|---|---|",
]
for name, run in runs.items():
    cpus = ", ".join(f"{process} {value:,.0f}" for process, value in sorted(run["cpuMicrosecondsPerCall"].items())
                     if value >= 0.5)
    for call, figures in sorted(run["calls"].items()):
        errors = ", ".join(f"{code} {count}" for code, count in sorted(figures["errors"].items())) or "0"
        lines.append(
            f"| {name} | {call} | {num(figures['callsPerSecond'])} | {figures['p50']:.2f} / {figures['p90']:.2f} / "
            f"{figures['p99']:.2f} / {figures['p999']:.2f} | {errors} | {cpus or '–'} |")
        cpus = "″"
lines.append("")

# Each call beside its server's Health/Check at the same fixed rate (scripts/bench.sh's matched runs): what the call
# costs beyond the framework's floor. Bookings have a lower rate of their own, with Health/Check beside them at it.
matched = {run["scenario"]: run for run in read_json("matched.json") or []}
booking = {run["scenario"]: run for run in read_json("matched-booking.json") or []}


def at_rate(results, scenario, server):
    """CPU µs per call of `server` in `scenario` and in its Health/Check, from the same matched runs, and the rate."""
    run, floor = results.get(scenario), results.get(f"health-{server}")
    if not run or not floor:
        return None, None, None
    rate = next(iter(run["calls"].values()))["callsPerSecond"]
    return (run["cpuMicrosecondsPerCall"].get(SERVICE[server]), floor["cpuMicrosecondsPerCall"].get(SERVICE[server]),
            rate)


def booking_cost():
    """A booking's CPU µs in consignment-service and vessel-service together, consignment-service's Health/Check at
    the same rate, and that rate; (None, None, None) when any was not measured."""
    consignment, floor, rate = at_rate(booking, "create-consignment", "consignment")
    vessel = booking.get("create-consignment", {}).get("cpuMicrosecondsPerCall", {}).get("vessel-service")
    if consignment is None or vessel is None:
        return None, None, None
    return consignment + vessel, floor, rate


if matched:
    lines += ["## Each call beside Health/Check at the same rate", "",
              "Open loop: each call sent at a fixed rate, and Health/Check on the same server at that rate just before,",
              "in the same run; CreateConsignment (both services' CPU) beside consignment-service's Health/Check at a",
              "lower rate, which the MongoDB stand-in allows. The targets and the gate below use these ratios.", "",
              "| call | server | calls/s | CPU µs per call | Health/Check at that rate | × Health/Check | "
              "+ µs |", "|---|---|---|---|---|---|---|"]
    for name, run in [*matched.items(), *booking.items()]:
        if name.startswith("health-"):
            continue
        own, floor, rate = at_rate(matched, name, run["server"])
        server = SERVICE[run["server"]]
        if name == "create-consignment":
            own, floor, rate = booking_cost()
            server = "consignment-service + vessel-service"
        if own is None or not floor:
            continue
        ratios[f"{name}: {server} CPU per call × Health/Check at the same rate"] = (own / floor, True)
        call = next(iter(run["calls"]))
        lines.append(f"| {call} | {server} | {rate:,.0f} | {own:,.0f} | {floor:,.0f} | {own / floor:.2f}× | "
                     f"{own - floor:+,.0f} |")
    lines.append("")

# The targets of the performance work (issue "A built-in load generator and benchmark").
targets = []


def target(what, value, limit, met, why_missed=""):
    verdict = "met" if met else f"**missed** {why_missed}"
    targets.append(f"| {what} | {value} | {limit} | {verdict} |")


def ratio_target(what, scenario, server, limit):
    own, floor, rate = at_rate(matched, scenario, server)
    if own is None or not floor:
        return target(what, "not measured", f"≤ {limit}× Health/Check", False, "(not measured)")
    value = own / floor
    target(what, f"{own:,.0f} µs = {value:.2f}× Health/Check ({floor:,.0f} µs), both at {rate:,.0f}/s",
           f"≤ {limit}×", value <= limit, f"by {value / limit - 1:.0%}")


ratio_target("ValidateToken", "validate-token", "user", 1.3)
ratio_target("Token check of an authenticated call (GetConsignments refused after the check)", "token-check",
             "consignment", 1.3)
own, floor, rate = at_rate(matched, "find-available", "vessel")
if own is not None and floor:
    target("FindAvailable in vessel-service", f"{own:,.0f} µs = Health/Check + {own - floor:,.0f} µs, both at "
           f"{rate:,.0f}/s", "≤ Health/Check + 150 µs", own - floor <= 150, f"by {own - floor - 150:,.0f} µs")
    if mongo_floor:
        # What FindAvailable adds to Health/Check is its MongoDB operation with our code around it: the query built,
        # sent from the driver's thread pool, the answer decoded. The floor is the same query from C.
        driver = mongo_floor["cpuMicrosecondsPerCall"]
        ratios["FindAvailable's MongoDB operation in vessel-service × libmongoc alone"] = ((own - floor) / driver, True)
        target("A MongoDB operation in our process (FindAvailable − Health/Check in vessel-service, both at the same "
               "rate) against the driver's own floor (the same query through libmongoc alone, Benchmarks/mongo-floor.c)",
               f"{own - floor:,.0f} µs = {(own - floor) / driver:.2f}× libmongoc alone ({driver:,.0f} µs)", "≤ 1.5×",
               (own - floor) / driver <= 1.5, f"by {(own - floor) / driver / 1.5 - 1:.0%}")
else:
    target("FindAvailable in vessel-service", "not measured", "≤ Health/Check + 150 µs", False, "(not measured)")
if not mongo_floor:
    target("A MongoDB operation in our process against the driver's own floor", "not measured", "≤ 1.5×", False,
           "(not measured: Benchmarks/mongo-floor.c did not build or run; see .local/bench/logs)")
total, floor, rate = booking_cost()
if total is not None and floor:
    target("CreateConsignment, summed over consignment-service and vessel-service",
           f"{total:,.0f} µs = {total / floor:.2f}× Health/Check of consignment-service, both at {rate:,.0f}/s", "≤ 5×",
           total / floor <= 5, f"by {total / floor / 5 - 1:.0%}")
else:
    target("CreateConsignment, summed over consignment-service and vessel-service", "not measured", "≤ 5×", False,
           "(not measured)")
auth = runs.get("auth")
if auth and auth.get("bcryptCeilingPerSecond"):
    rate, ceiling = auth["calls"]["Auth"]["callsPerSecond"], auth["bcryptCeilingPerSecond"]
    ratios["auth: logins per second × the bcrypt ceiling"] = (rate / ceiling, False)
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
for service, (ms, rss, *parts) in sorted(startup.items()):
    target(f"{service}: SERVING after start, its database answering", f"{ms:.0f} ms", "≤ 200 ms", ms <= 200,
           f"by {ms - 200:.0f} ms")
    # What the resident figure is made of: the rest of it is code and data mapped from the executable and libraries.
    made_of = f" (anonymous: {parts[0]:.1f} MB; proportional share: {parts[1]:.1f} MB)" if parts else ""
    target(f"{service}: resident memory idle", f"{rss:.1f} MB{made_of}", "≤ 32 MB", rss <= 32,
           f"by {rss - 32:.1f} MB")
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
        rate, swift_rate = h2load[service], h2load.get("swift-greeter")
        ratios[f"{service}: Health/Check calls/s × the grpc-go greeter's (h2load)"] = (rate / go_rate, False)
        # Our framework's own floor beside it: what no code of ours can go below.
        framework = f"; the bare grpc-swift-2 greeter {swift_rate / go_rate:.2f}×" if swift_rate else ""
        if swift_rate:
            ratios[f"{service}: Health/Check calls/s × the grpc-swift-2 greeter's (h2load)"] = (rate / swift_rate, False)
        target(f"Health/Check on {service} against the grpc-go greeter (h2load)",
               f"{rate:,.0f}/s of {go_rate:,.0f}/s = {rate / go_rate:.2f}×{framework}", "≥ 0.4×",
               rate / go_rate >= 0.4, f"by {1 - rate / go_rate / 0.4:.0%}")
MB = 1e6
if "image" in sizes:
    target("The image (`localhost/shippy:latest`, made by `make test-containers`)", f"{sizes['image'] / MB:,.0f} MB",
           "≤ 200 MB", sizes["image"] <= 200 * MB, f"by {(sizes['image'] - 200 * MB) / MB:,.0f} MB")
    clis = {path: size for path, size in sizes.items() if path.endswith("-cli")}
    for path, size in sorted(clis.items()):
        target(f"A CLI executable in the image: {os.path.basename(path)}", f"{size / MB:,.1f} MB", "≤ 30 MB",
               size <= 30 * MB, f"by {(size - 30 * MB) / MB:,.1f} MB")
else:
    for what, limit in (("The image", "≤ 200 MB"), ("A CLI executable in the image", "≤ 30 MB")):
        target(what, "not measured", limit, False,
               "(not measured: no `localhost/shippy:latest` on this machine; `make test-containers` builds it)")

if h2load:
    lines += ["## The floor: Health/Check beside bare grpc-go and grpc-swift-2 greeters", "",
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

if mongo_floor:
    lines += ["## The MongoDB driver's own floor", "",
              "FindAvailable's query (filter, sort, limit 1, projection; the cursor read) sent "
              f"{mongo_floor['calls']:,} times through", "libmongoc alone from a few lines of C "
              "(Benchmarks/mongo-floor.c), one at a time, on the same server after the scenarios:",
              f"{mongo_floor['cpuMicrosecondsPerCall']:,.1f} µs of the program's CPU and "
              f"{mongo_floor['wallMicrosecondsPerCall']:,.1f} µs of wall time per query. The targets set",
              "what vessel-service's FindAvailable adds to its Health/Check beside the first figure.", ""]

if sizes:
    lines += ["## The image", "", "`scripts/containers.sh sizes` on the `localhost/shippy:latest` that `make "
              "test-containers` built on this machine", "(not necessarily from this commit): one static "
              "(`--static-swift-stdlib`), stripped executable, `shippy`,",
              "and each command a link to it (its size is what it runs).", "",
              "| | MB |", "|---|---|",
              f"| the image | {sizes.get('image', 0) / MB:,.0f} |"]
    lines += [f"| {os.path.basename(path)} | {size / MB:,.1f} |" for path, size in sorted(sizes.items())
              if path != "image"]
    lines.append("")

profiles = sorted(args.results.glob("profile-*.txt"))
if profiles:
    lines += ["## Where the CPU goes: a profile of each call scenario", "",
              "Each call scenario again for 3 s of its calls, after the figures above, with `perf record -F 999` on "
              "our four", "services (not MongoDB, PostgreSQL or NATS); the symbols with 1 % or more of those samples, "
              "by self time, where", "each is (the executable, a library, the kernel). `floor-vessel-service` and "
              "`floor-swift-greeter`: Health/Check on", "vessel-service and the bare grpc-swift-2 greeter's SayHello, "
              "each under h2load, that process alone: the framework's", "cost beside ours.", ""]
    for path in profiles:
        rows = []
        for line in path.read_text().splitlines():
            parts = line.split(None, 3)  # share, where, [.] or [k], symbol
            if len(parts) == 4 and parts[0].endswith("%"):
                symbol = parts[3].replace("|", "\\|")
                rows.append(f"| {parts[0]} | {parts[1]} | `{symbol[:110]}{'…' if len(symbol) > 110 else ''}` |")
        lines += [f"**{path.stem.removeprefix('profile-')}**", "", "| share | where | symbol |", "|---|---|---|",
                  *(rows or ["| – | – | no samples (see .local/bench/logs/perf.log) |"]), ""]

# The ratios against the committed report's: the gate.
committed = {}
if args.committed and args.committed.exists():
    for line in args.committed.read_text().splitlines():
        if line.startswith("<!-- ratios "):
            committed = json.loads(line.removeprefix("<!-- ratios ").removesuffix(" -->"))
regressions = []
if committed:
    lines += ["## Against the committed report", "",
              f"Each ratio of this run beside the one in the committed BENCHMARKS.md; one more than "
              f"{REGRESSION:.0%} worse is", "named here and by `make bench`, which then exits 1. Only ratios of "
              "figures taken alike are compared: CPU", "per call at equal rates, calls/s under the same h2load, the "
              "driver's floor, logins against bcrypt's ceiling. A p99", "of a few hundred calls is a target of its "
              "own above, not a ratio for this comparison: it moved up to 4× between runs.", "",
              "| ratio | committed | this run | change | |", "|---|---|---|---|---|"]
    for name, (value, higher_is_worse) in ratios.items():
        before = committed.get(name)
        if before is None:
            lines.append(f"| {name} | – | {value:.2f} | new | |")
            continue
        worse = value / before[0] - 1 if higher_is_worse else before[0] / value - 1
        flag = f"**{worse:.0%} worse**" if worse > REGRESSION else ""
        if flag:
            regressions.append(f"{name}: {before[0]:.2f} committed, {value:.2f} now ({worse:.0%} worse)")
        lines.append(f"| {name} | {before[0]:.2f} | {value:.2f} | {value / before[0] - 1:+.0%} | {flag} |")
    lines.append("")

lines += ["## Targets", "",
          "Each missed target, and why, is taken up under \"Where the time goes, and what is missed\" below.", "",
          "| target | this run | limit | |", "|---|---|---|---|", *targets, ""]
notes = pathlib.Path(__file__).resolve().parent.parent / "docs" / "performance.md"
if notes.exists():
    lines += [notes.read_text().rstrip(), ""]
# Machine-readable, for the next run's comparison (an HTML comment: not shown where the report is read).
rounded = {name: [round(value, 4), higher_is_worse] for name, (value, higher_is_worse) in ratios.items()}
lines.append(f"<!-- ratios {json.dumps(rounded, ensure_ascii=False)} -->")
print("\n".join(lines))


def chart(path):
    """A stacked bar per scenario: its CPU per call in each of our processes (and the greeter), so that where a
    call's cost lies shows. The servers beside them are left out: MongoDB's stand-in alone would set the scale."""
    ours = {*SERVICE.values(), "email-service"}
    rows = [(name, {p: v for p, v in run["cpuMicrosecondsPerCall"].items() if v >= 0.5 and p in ours})
            for name, run in runs.items()
            if not run.get("bcryptCeilingPerSecond") and name not in ("signup-burst", "login-flood", "shippers")]
    rows = [(name, cpus) for name, cpus in rows if cpus]
    processes = sorted({p for _, cpus in rows for p in cpus})
    colours = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
    colour = {p: colours[i % len(colours)] for i, p in enumerate(processes)}
    left, bar, gap, width = 170, 18, 8, 560
    most = max(sum(cpus.values()) for _, cpus in rows)
    height = 60 + len(rows) * (bar + gap) + 20 * ((len(processes) + 3) // 4)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
           'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="14">CPU µs per call in our processes ({args.commit}, {run_date})</text>',
           f'<text x="{left + width + 80}" y="20" text-anchor="end" fill="#555">MongoDB, PostgreSQL, NATS: '
           'BENCHMARKS.md</text>']
    for i, (name, cpus) in enumerate(rows):
        y, x = 35 + i * (bar + gap), left
        svg.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{name}</text>')
        for process in processes:
            if process in cpus:
                w = width * cpus[process] / most
                svg.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour[process]}">'
                           f'<title>{process}: {cpus[process]:,.0f} µs</title></rect>')
                x += w
        svg.append(f'<text x="{x + 4:.1f}" y="{y + 13}">{sum(cpus.values()):,.0f}</text>')
    y = 45 + len(rows) * (bar + gap)
    for i, process in enumerate(processes):
        lx, ly = 10 + (i % 4) * 190, y + (i // 4) * 20
        svg += [f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{colour[process]}"/>',
                f'<text x="{lx + 16}" y="{ly + 10}">{process}</text>']
    svg.append("</svg>")
    path.write_text("\n".join(svg) + "\n")


if args.picture and runs:
    chart(args.picture)
for regression in regressions:
    print(f"bench: more than {REGRESSION:.0%} worse than the committed report: {regression}", file=sys.stderr)
sys.exit(1 if regressions else 0)
