#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a bounded time each: scripts/fuzz.sh [FUZZTIME]
# (default 20s). `make fuzz` calls it with $(FUZZTIME). `make test` runs only the seed corpora
# (the f.Add seeds and testdata/fuzz/), as plain tests.
# A failing input is written under the package's testdata/fuzz/<Target>/ by go test: commit
# it, and it becomes part of the seed corpus.
set -euo pipefail
fuzztime="${1:-20s}"
cd "$(dirname "$0")/.."
GO="${GO:-go}"

targets=0
failed=()
for pkg in $($GO list ./...); do
	# go test -list prints the matching names, then "ok ..." for the package.
	names=$($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for name in $names; do
		targets=$((targets + 1))
		echo "== $pkg $name ($fuzztime)"
		if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
			failed+=("$pkg $name")
		fi
	done
done
if [ "$targets" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $targets targets, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
