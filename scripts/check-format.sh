#!/usr/bin/env bash
# Fails when a Swift source is not as swift-format (with the root .swift-format) writes it; `make format`
# formats them. The generated code under Shared/Contracts is left as protoc writes it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
unformatted=()
while IFS= read -r file; do
    swift-format format --configuration .swift-format "$file" | cmp -s - "$file" || unformatted+=("$file")
done < <(git ls-files --cached --others --exclude-standard '*.swift' | grep -v '^Shared/Contracts/' | grep -v '^Tools/' | grep -v '/Generated/')
if [ ${#unformatted[@]} -gt 0 ]; then
    echo "check-format: FAILED: not formatted (run make format): ${unformatted[*]}" >&2
    exit 1
fi
echo "check-format: every Swift source is formatted"
