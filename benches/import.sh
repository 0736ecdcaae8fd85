#!/usr/bin/env bash
# Time whole imports, ours against the reference, side by side on one machine.
#
#   benches/import.sh [-n RUNS] <git repository path>...
#
# Builds mkit-bridge in release mode, then, for each repository, imports it
# with `mkit git import` (the reference 0.5.0, which must be on PATH) and with
# `mkit-bridge import`, alternating, RUNS times each (default 3), each into a
# fresh directory under the same importer key, and times a no-change re-run
# (`fetch`) of each. Every run goes through `/usr/bin/time`, so the table
# gives the peak RSS too; "objects" counts the files in `.mkit/objects` after
# the first run. It checks that both tools give identical refs and ids, and
# prints one table (median wall times, ratios, peak RSS, objects written).
# Nothing is written outside a temp directory, which is kept until the end so
# that no mass deletion slows a later repository's runs (see settle.sh).
set -euo pipefail
usage="usage: benches/import.sh [-n RUNS] <git repository path>..."
. "$(dirname "$0")/lib.sh"
bench_prepare
mkdir -m 700 "$work/keys"
printf '\x42%.0s' $(seq 32) > "$work/keys/import.key"
chmod 600 "$work/keys/import.key"
key="$work/keys/import.key"
refs_of() { (cd "$1/.mkit" && find refs -type f | sort | while read -r f; do echo "$f $(cat "$f")"; done); }
objects_in() { find "$1/.mkit/objects" -type f ! -name '.*' | wc -l; }

for repo in "$@"; do
  repo="$(cd "$repo" && pwd)"; name="$(basename "$repo" .git)"; w="$work/$name"; mkdir -p "$w"
  for i in $(seq "$runs"); do
    timed "$w/theirs.t" mkit git import "$repo" "$w/theirs$i" --key "$key"
    timed "$w/ours.t" "$ours" import "$repo" "$w/ours$i" --key "$key" --quiet
    (cd "$w/theirs$i" && timed "$w/theirs.re" mkit git fetch --key "$key")
    (cd "$w/ours$i" && timed "$w/ours.re" "$ours" fetch --key "$key" --quiet)
  done
  n=$(refs_of "$w/ours1" | wc -l)
  if diff <(refs_of "$w/theirs1") <(refs_of "$w/ours1") >"$w/refs.diff"; then same="identical"; else
    same="DIFFERENT"; failed=1
    { echo "== $name: refs differ"; head -20 "$w/refs.diff"; tail -3 "$w/theirs.t.err" "$w/ours.t.err"; } >&2
  fi
  bench_row "$w" "$name" "$n" "$same" "$(objects_in "$w/theirs1")" "$(objects_in "$w/ours1")"
done

bench_report "| repository | refs (ours vs reference) | reference | mkit-bridge | ratio | objects written (ref / ours) | peak RSS (ref / ours) | no-change fetch (ref / ours) |"
