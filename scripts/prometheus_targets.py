#!/usr/bin/env python3
"""Asks a running Prometheus whether it scrapes Shippy as it should:

    prometheus_targets.py URL TARGETS SECONDS

waits up to SECONDS for exactly TARGETS active targets, each with its last scrape up, and for Shippy's alert
rules to be loaded; prints the targets and the rules, or says what is missing and exits 1."""
import json
import sys
import time
import urllib.request

url, wanted, seconds = sys.argv[1].rstrip("/"), int(sys.argv[2]), float(sys.argv[3])


def get(path):
    with urllib.request.urlopen(url + path, timeout=5) as response:
        return json.load(response)["data"]


deadline = time.monotonic() + seconds
problem = "no answer yet"
while time.monotonic() < deadline:
    try:
        targets = get("/api/v1/targets")["activeTargets"]
        alerts = [rule["name"] for group in get("/api/v1/rules")["groups"] for rule in group["rules"]
                  if rule["type"] == "alerting"]
    except OSError as error:
        problem = f"{url} does not answer: {error}"
        time.sleep(1)
        continue
    down = [f"{t['scrapeUrl']} ({t['health']}: {t['lastError'] or 'not scraped yet'})"
            for t in targets if t["health"] != "up"]
    if len(targets) != wanted:
        problem = f"{len(targets)} targets, not {wanted}"
    elif down:
        problem = "not up: " + ", ".join(down)
    elif not alerts:
        problem = "no alert rules loaded"
    else:
        for target in targets:
            print(f"prometheus: {target['labels'].get('service', target['labels']['instance'])} "
                  f"{target['scrapeUrl']} up")
        print(f"prometheus: {len(alerts)} alert rules loaded: {', '.join(alerts)}")
        sys.exit(0)
    time.sleep(1)
print(f"prometheus at {url}: after {seconds:.0f} s, {problem}", file=sys.stderr)
sys.exit(1)
