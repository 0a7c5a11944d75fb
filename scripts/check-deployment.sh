#!/usr/bin/env bash
# Checks what cannot run here (no Docker engine) as far as it can be checked, as part of `make test`:
#   - docker-compose.yml is valid (`docker-compose config -q`), every long-running service has a
#     healthcheck and every depends_on waits for service_healthy (scripts/check_compose.py);
#   - the Dockerfile copies only executables that Package.swift builds, and every one of them;
#   - the runtime stage installs every library the binaries link (ELF NEEDED of the native builds, Swift's
#     own libraries excepted: the image links them statically);
#   - every target imports exactly what Package.swift declares for it (scripts/check_dependencies.py), and the
#     CLIs link no database or messaging library;
#   - shellcheck passes on every shell script.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
fail() { echo "check-deployment: FAILED: $*" >&2; exit 1; }

docker-compose -f docker-compose.yml config -q || fail "docker-compose config rejects docker-compose.yml"
python3 scripts/check_compose.py docker-compose.yml

products=$(grep -o '\.executable(name: "[^"]*"' Package.swift | cut -d'"' -f2 | sort)
copied=$(grep '^COPY --from=build' Dockerfile | tr ' ' '\n' | grep '^/out/' | sed 's|/out/||' | sort)
[ "$products" = "$copied" ] || fail "the Dockerfile copies [$(echo "$copied" | xargs)] but Package.swift builds [$(echo "$products" | xargs)]"

declared=$(grep '^# runtime-packages:' Dockerfile | cut -d: -f2)
installed=$(sed -n '/^FROM debian/,$p' Dockerfile | sed -n '/apt-get install/,/rm -rf/p')
for package in $declared; do
    echo "$installed" | grep -qw -- "$package" || fail "runtime package $package is listed but not installed"
done
bin=$(swift build --show-bin-path)
for product in $products; do
    [ -x "$bin/$product" ] || fail "$bin/$product is not built"
    for library in $(readelf -d "$bin/$product" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case "$library" in libswift* | libFoundation* | libdispatch.so | libBlocksRuntime.so | ld-linux*) continue ;; esac
        package=$(dpkg -S "*/$library" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -n "$package" ] || fail "$product links $library, which no Debian package provides here"
        echo " $declared " | grep -qw -- "$package" || fail "$product links $library from $package, missing in the Dockerfile's runtime stage"
    done
done
echo "check-deployment: Dockerfile copies all $(echo "$products" | wc -w) executables; runtime stage has every linked library ($(echo "$declared" | xargs))"

python3 scripts/check_dependencies.py
for cli in user-cli consignment-cli vessel-cli; do
    driver=$(readelf -d "$bin/$cli" | sed -n 's/.*(NEEDED).*\[\(lib\(mongoc\|bson\|nats\|pq\)[^]]*\)\].*/\1/p')
    [ -z "$driver" ] || fail "$cli links $driver: the CLIs must link no database or messaging driver"
done
echo "check-deployment: user-cli, consignment-cli and vessel-cli link no MongoDB, PostgreSQL or NATS library"

scripts=(scripts/*.sh .ci/run)
shellcheck "${scripts[@]}"
echo "check-deployment: shellcheck passed on ${#scripts[@]} scripts"
