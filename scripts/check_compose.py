#!/usr/bin/env python3
"""Checks docker-compose.yml as `make test` requires: every long-running service has a healthcheck,
and every depends_on waits for service_healthy. Prints what it checked; exits 1 on the first problem."""
import sys

import yaml

path = sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml"
with open(path, encoding="utf-8") as file:
    compose = yaml.safe_load(file)

# The services clients outside the compose network call, and the two consoles people open; every other port
# stays internal.
PUBLIC = {"gateway", "user", "consignment", "prometheus", "jaeger"}

problems = []
services = compose.get("services") or {}
if not services:
    problems.append("no services")
for name, service in services.items():
    one_shot = "cli" in (service.get("profiles") or [])
    if not one_shot and not (service.get("healthcheck") or {}).get("test"):
        problems.append(f"{name}: no healthcheck")
    if service.get("ports") and name not in PUBLIC:
        problems.append(f"{name}: publishes ports, but only {', '.join(sorted(PUBLIC))} are for clients outside")
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        problems.append(f"{name}: depends_on is a list, so it does not wait for health")
        continue
    for dependency, condition in depends.items():
        if dependency not in services:
            problems.append(f"{name}: depends on unknown service {dependency}")
        if (condition or {}).get("condition") != "service_healthy":
            problems.append(f"{name}: depends_on {dependency} does not wait for service_healthy")

if problems:
    print("check_compose: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check_compose: {len(services)} services; every long-running one has a healthcheck; "
      "every depends_on waits for service_healthy; only the gateway, user, consignment and the two consoles publish ports")
