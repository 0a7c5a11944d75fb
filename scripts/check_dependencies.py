#!/usr/bin/env python3
"""Package.swift is the only table of which module may use which. This checks the sources against it, as the
compiler's explicit-import check would: every module a target imports is one of its declared dependencies (or
a module of a declared product, or the toolchain's), and every dependency it declares is imported by at least
one of its files. Part of `make test`; exits 1 naming each file and dependency out of line."""
import json
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent

# What the toolchain brings; no target declares these.
TOOLCHAIN = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Dispatch", "Glibc", "Musl",
             "Synchronization", "XCTest", "Testing", "_Concurrency", "Darwin"}
# Modules that a declared product brings beside its own: importing them needs the product, not a dependency of
# their own.
PRODUCT_MODULES = {"GRPCNIOTransportHTTP2": {"GRPCNIOTransportCore"}}

manifest = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                     capture_output=True, text=True).stdout)
problems = []
checked = 0
for target in manifest["targets"]:
    if target["type"] == "system":
        continue
    declared = {next(iter(d.values()))[0] for d in target.get("dependencies", [])}
    allowed = declared | TOOLCHAIN | set().union(*(PRODUCT_MODULES.get(d, set()) for d in declared))
    imported = set()
    for file in sorted((root / target["path"]).rglob("*.swift")):
        for module in re.findall(r"^(?:@testable |@_spi\(\w+\) |public |internal )*import (?:\w+ )?(\w+)",
                                 file.read_text(), re.MULTILINE):
            imported.add(module)
            if module not in allowed:
                problems.append(f"{file.relative_to(root)} imports {module}, which {target['name']} does not declare")
    used = imported | {d for d in declared if imported & PRODUCT_MODULES.get(d, set())}
    problems += [f"{target['name']} declares {d} in Package.swift but no file of it imports it"
                 for d in sorted(declared - used)]
    checked += 1

if problems:
    print("check-dependencies: FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check-dependencies: the imports of all {checked} targets are exactly the dependencies Package.swift declares")
