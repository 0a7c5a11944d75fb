#!/usr/bin/env python3
"""The table of `make bench-tracing` (scripts/bench-tracing.sh), in Markdown on stdout:

    bench_tracing_report.py RESULTS MODE…

RESULTS holds MODE-ROUND.json (shippy-bench's --json) for every mode and round, and MODE-ROUND.spans (the
spans the receiver got) for tracing on. Per scenario and mode, the median over the rounds of: calls/s, p50 and
p99 latency, and the CPU per call of the four Shippy services together (MongoDB, PostgreSQL and NATS apart)."""
import json
import pathlib
import statistics
import sys

results, modes = pathlib.Path(sys.argv[1]), sys.argv[2:]
SERVICES = ("consignment-service", "vessel-service", "user-service", "email-service")


def rounds(mode):
    return sorted(results.glob(f"{mode}-*.json"))


def figures(run):
    """calls/s, p50 ms, p99 ms and Shippy CPU µs per call of one scenario run (its first call, the one measured)."""
    call = next(iter(run["calls"].values()))
    cpu = sum(run["cpuMicrosecondsPerCall"].get(service, 0) for service in SERVICES)
    return call["callsPerSecond"], call["p50"], call["p99"], cpu


by_mode = {}
for mode in modes:
    per_scenario = {}
    for path in rounds(mode):
        for run in json.loads(path.read_text()):
            per_scenario.setdefault(run["scenario"], []).append(figures(run))
    by_mode[mode] = {name: [statistics.median(column) for column in zip(*values)]
                     for name, values in per_scenario.items()}

scenarios = list(by_mode[modes[0]])
print(f"Tracing cost, median of {len(rounds(modes[0]))} rounds (closed loop, 64 workers); CPU µs per call is the four "
      "Shippy services together.")
print()
print("| scenario | " + " | ".join(f"{mode}: calls/s, p50 / p99 ms, CPU µs" for mode in modes) + " | on vs off, CPU |")
print("|---|" + "---|" * len(modes) + "---|")
for name in scenarios:
    cells = []
    for mode in modes:
        rate, p50, p99, cpu = by_mode[mode].get(name, (0, 0, 0, 0))
        cells.append(f"{rate:,.0f}, {p50:.2f} / {p99:.2f}, {cpu:,.0f}")
    off, on = by_mode.get("off", {}).get(name), by_mode.get("on", {}).get(name)
    change = f"{(on[3] / off[3] - 1) * 100:+.0f} %" if off and on and off[3] else "–"
    print(f"| {name} | " + " | ".join(cells) + f" | {change} |")
if "before" in modes:
    print()
    print("off vs before, CPU per call: " + ", ".join(
        f"{name} {(by_mode['off'][name][3] / by_mode['before'][name][3] - 1) * 100:+.0f} %"
        for name in scenarios if by_mode["before"].get(name) and by_mode["off"].get(name)))
spans = [int(path.read_text()) for path in sorted(results.glob("on-*.spans"))]
if spans:
    print()
    print(f"Spans the OTLP receiver got per round with tracing on: {', '.join(f'{count:,}' for count in spans)}.")
