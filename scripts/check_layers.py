#!/usr/bin/env python3
"""Checks every target's imports against the layers of the README's "Architecture" section: each folder may
import only the Shippy modules and drivers listed for it here. Part of `make test`; exits 1 naming each file
that imports across a layer."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent

# Our modules and the drivers (C libraries, database clients) each folder may import.
ALLOWED = {
    "Shared/Domain": set(),
    "Shared/Contracts": set(),
    "Shared/Storage": {"ShippyDomain"},
    "Shared/Identity": {"ShippyDomain", "JWTKit", "Crypto"},
    "Shared/Messaging": {"ShippyDomain", "CNats"},
    "Shared/Discovery": set(),
    "Shared/Configuration": {"ShippyDomain", "ShippyDiscovery", "Configuration"},
    "Shared/CLI": {"ShippyDomain", "ShippyConfiguration", "ShippyContracts", "ShippyDiscovery"},
    "Shared/Telemetry": {"ShippyDomain", "ShippyConfiguration"},
    "Shared/Runtime": {
        "ShippyDomain", "ShippyContracts", "ShippyIdentity", "ShippyConfiguration", "ShippyTelemetry", "ShippyDiscovery"},
    "Shared/Mongo": {"ShippyDomain", "ShippyStorage", "ShippyRuntime", "ShippyConfiguration", "ShippyTelemetry", "CMongoc"},
    "Shared/Postgres": {"ShippyDomain", "ShippyStorage", "ShippyTelemetry", "PostgresNIO"},
    "Services/vessel-service": {
        "ShippyDomain", "ShippyContracts", "ShippyStorage", "ShippyMongo", "ShippyIdentity", "ShippyRuntime", "ShippyConfiguration",
    },
    "Services/consignment-service": {
        "ShippyDomain", "ShippyContracts", "ShippyStorage", "ShippyMongo", "ShippyIdentity", "ShippyRuntime", "ShippyConfiguration",
        "ShippyDiscovery", "Crypto"},
    "Services/user-service": {
        "ShippyDomain", "ShippyContracts", "ShippyStorage", "ShippyPostgres", "ShippyIdentity", "ShippyRuntime", "ShippyConfiguration",
        "ShippyMessaging", "ShippyTelemetry", "PostgresNIO", "JWTKit"},
    "Services/email-service": {
        "ShippyDomain", "ShippyContracts", "ShippyMessaging", "ShippyRuntime", "ShippyTelemetry", "ShippyConfiguration"},
    "Services/user-cli": {"ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery"},
    "Services/consignment-cli": {"ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery"},
    "Services/vessel-cli": {"ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery"},
    "Services/shippy-bench": {"ShippyContracts", "ShippyCLI", "ShippyConfiguration", "ShippyDiscovery"},
    # The HTTP edge reaches the data only through the services: no database, messaging or token library.
    "Services/api-gateway": {"ShippyContracts", "ShippyRuntime", "ShippyConfiguration", "ShippyDiscovery"},
}
# What a folder may not import unless listed above: our modules, the C drivers, the database and token libraries,
# and swift-configuration (read through ShippyConfiguration only, so that every setting is declared once there).
CHECKED = re.compile(r"^(Shippy\w+|C[A-Z]\w*|PostgresNIO|JWTKit|Crypto|Configuration)$")

problems = []
folders = 0
for folder, allowed in ALLOWED.items():
    if not (root / folder).is_dir():
        problems.append(f"{folder}: no such folder")
        continue
    folders += 1
    for file in sorted((root / folder).glob("*.swift")):
        for match in re.finditer(r"^(?:@testable )?import (\w+)", file.read_text(), re.MULTILINE):
            module = match.group(1)
            if CHECKED.match(module) and module not in allowed:
                problems.append(f"{file.relative_to(root)} imports {module}, which {folder} may not")
unlisted = [f"{p.parent.name}/{p.name}" for p in (root / "Services").iterdir() if p.is_dir()]
unlisted += [f"Shared/{p.name}" for p in (root / "Shared").iterdir() if p.is_dir() and any(p.glob("*.swift"))]
problems += [f"{folder}: not in the layer list of scripts/check_layers.py" for folder in unlisted
             if folder not in ALLOWED]

if problems:
    print("check-layers: FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check-layers: the imports of all {folders} folders keep to their layers")
