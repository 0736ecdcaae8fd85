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
runs=3
if [ "${1:-}" = "-n" ]; then runs="$2"; shift 2; fi
[ $# -gt 0 ] || { echo "usage: benches/import.sh [-n RUNS] <git repository path>..." >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
ours="$here/target/release/mkit-bridge"
command -v mkit >/dev/null || { echo "the reference mkit is not on PATH" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 1; }

. "$here/benches/settle.sh"
bench_start

# timed OUT CMD...: run CMD (in the current directory), append "wall_s rss_kb" to OUT.
timed() {
  local out="$1"; shift
  sync
  /usr/bin/time -f '%e %M' -o "$out.one" "$@" >/dev/null 2>>"$out.err" || true
  cat "$out.one" >> "$out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
refs_of() { (cd "$1/.mkit" && find refs -type f | sort | while read -r f; do echo "$f $(cat "$f")"; done); }
objects_in() { find "$1/.mkit/objects" -type f ! -name '.*' | wc -l; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

rows=(); failed=0
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
  th=$(col 1 "$w/theirs.t"); us=$(col 1 "$w/ours.t"); thr=$(col 1 "$w/theirs.re"); usr=$(col 1 "$w/ours.re")
  rows+=("$(printf '| %s | %s %s | %.2f s | %.2f s | **%sx** | %s / %s | %s / %s MB | %.2f / %.2f s |' \
    "$name" "$n" "$same" "$th" "$us" "$(ratio "$th" "$us")" \
    "$(objects_in "$w/theirs1")" "$(objects_in "$w/ours1")" \
    "$(mb "$(col 2 "$w/theirs.t")")" "$(mb "$(col 2 "$w/ours.t")")" "$thr" "$usr")")
done

echo "machine: $(nproc) cores; median of $runs runs each, alternating; $(date -u +%Y-%m-%d)"
echo
echo "| repository | refs (ours vs reference) | reference | mkit-bridge | ratio | objects written (ref / ours) | peak RSS (ref / ours) | no-change fetch (ref / ours) |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$failed"
