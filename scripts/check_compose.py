#!/usr/bin/env python3
"""Checks docker-compose.yml as `make test` requires: every long-running service has a healthcheck and waits for
its dependencies' health, or for a one-shot service (no healthcheck) to complete; only the services clients outside
call publish ports; and every Shippy program runs over mutual TLS with an identity of its own: the TLS settings
pointing into /tls, a volume mounted there read-only that no other service mounts, written by `certificates` for
that program's name (a service's identity is its program's), and no PLAINTEXT; a server that takes TLS (NATS,
PostgreSQL, MongoDB) mounts its own identity the same way, every NATS URL says tls://, every PostgreSQL URL asks
for sslmode=verify-full with the authority, and every MongoDB URL for TLS with the authority and credentials. Prints what it checked; exits 1 listing
every problem."""
import sys

import yaml

path = sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml"
with open(path, encoding="utf-8") as file:
    compose = yaml.safe_load(file)

# The services clients outside the compose network call, and the two consoles people open; every other port
# stays internal.
PUBLIC = {"gateway", "user", "consignment", "prometheus", "jaeger"}
# Where each Shippy program finds its identity, the shape of a Kubernetes Secret from cert-manager.
TLS = {"TLS_CERTIFICATE": "/tls/tls.crt", "TLS_KEY": "/tls/tls.key", "TLS_CA": "/tls/ca.crt"}
CERTIFICATES = "certificates"

problems = []
services = compose.get("services") or {}
if not services:
    problems.append("no services")
one_shot = {name for name, service in services.items() if not (service.get("healthcheck") or {}).get("test")}
for name, service in services.items():
    cli = "cli" in (service.get("profiles") or [])
    if name in one_shot and not cli and not any(
            dependency == name for other in services.values() for dependency in (other.get("depends_on") or {})):
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
        wanted = "service_completed_successfully" if dependency in one_shot else "service_healthy"
        if (condition or {}).get("condition") != wanted:
            problems.append(f"{name}: depends_on {dependency} does not wait for {wanted}")


def mounts(service):
    """The service's named volumes: {target: (volume, read-only)}."""
    found = {}
    for entry in service.get("volumes") or []:
        source, target, *mode = entry.split(":")
        found[target] = (source, mode == ["ro"])
    return found


# Every program of the Shippy image, but the one that makes the certificates, runs with its identity.
certificates = services.get(CERTIFICATES)
written = {}  # volume -> the identity `certificates` writes into it
if certificates is None:
    problems.append(f"no {CERTIFICATES} service")
else:
    command = certificates.get("command") or []
    root = command[command.index("--folders") + 1] if "--folders" in command else None
    names = {argument.split("=")[0] for argument in command[command.index("--folders") + 3:]} if root else set()
    for target, (volume, _) in mounts(certificates).items():
        if root and target.startswith(root + "/") and target.removeprefix(root + "/") in names:
            written[volume] = target.removeprefix(root + "/")
identity_volumes = {}
for name, service in services.items():
    environment = service.get("environment") or {}
    if "NATS_URL" in environment and not environment["NATS_URL"].startswith("tls://"):
        problems.append(f"{name}: NATS_URL is not tls://, and NATS serves TLS only")
    postgres_url = environment.get("POSTGRES_URL", "")
    if postgres_url and not ("sslmode=verify-full" in postgres_url and "sslrootcert=/tls/ca.crt" in postgres_url):
        problems.append(f"{name}: POSTGRES_URL does not verify PostgreSQL's certificate "
                        "(sslmode=verify-full&sslrootcert=/tls/ca.crt)")
    mongo_url = environment.get("MONGO_URL", "")
    if mongo_url and not ("tls=true" in mongo_url and "tlsCAFile=/tls/ca.crt" in mongo_url and "@" in mongo_url):
        problems.append(f"{name}: MONGO_URL does not log in over TLS verified against the authority "
                        "(user:password@…?tls=true&tlsCAFile=/tls/ca.crt)")
    shippy = service.get("image") == "shippy:latest"
    service_mounts = mounts(service)
    if name == CERTIFICATES or not (shippy or "/tls" in service_mounts):
        continue
    for key, value in TLS.items() if shippy else ():
        if environment.get(key) != value:
            problems.append(f"{name}: {key} is {environment.get(key)!r}, not {value}")
    if "PLAINTEXT" in environment:
        problems.append(f"{name}: sets PLAINTEXT")
    volume, read_only = service_mounts.get("/tls", (None, False))
    if volume not in written:
        problems.append(f"{name}: /tls is not a volume that {CERTIFICATES} writes an identity into")
        continue
    if not read_only:
        problems.append(f"{name}: mounts its identity writable")
    program = (service.get("command") or [None])[0] if shippy else name
    if program and written[volume] != program:
        problems.append(f"{name}: runs {program} with the identity of {written[volume]}")
    identity_volumes.setdefault(volume, set()).add(name)
    if "cli" not in (service.get("profiles") or []) and CERTIFICATES not in (service.get("depends_on") or {}):
        problems.append(f"{name}: does not wait for {CERTIFICATES}")
for volume, users in identity_volumes.items():
    # The CLIs share one identity; a service's is its own.
    if len(users) > 1 and not all("cli" in (services[user].get("profiles") or []) for user in users):
        problems.append(f"{', '.join(sorted(users))}: share the identity in {volume}")

if problems:
    print("check_compose: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check_compose: {len(services)} services; every long-running one has a healthcheck; every depends_on waits "
      "for health, or for a one-shot service to complete; only the gateway, user, consignment and the two consoles "
      f"publish ports; {len(identity_volumes)} identities from {CERTIFICATES}, each program's TLS settings in /tls, "
      "read-only, a service's its own and named after its program; NATS over TLS; PostgreSQL over verified TLS; MongoDB "
      "over verified TLS with a password")
