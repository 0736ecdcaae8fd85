#!/usr/bin/env bash
# Time two builds of mkit-bridge against each other, side by side.
#
#   benches/builds.sh [-n RUNS] OLD_BINARY NEW_BINARY <git repository path>...
#
# For a change that should not slow anything down (a refactor): for each
# repository, both binaries import it, alternating, RUNS times each
# (default 3), each into a fresh directory under the same key; then each
# re-runs `fetch` with nothing new, and exports its first import to a fresh
# local bare mirror (`--no-attest`). Every run goes through `/usr/bin/time`.
# It checks that both builds give identical mkit refs and identical mirror
# refs, and prints one table (median wall time and peak RSS of each, and the
# ratio old / new: above 1 means the new build is faster). Nothing is written
# outside a temp directory, kept until the end (see settle.sh).
set -euo pipefail
runs=3
if [ "${1:-}" = "-n" ]; then runs="$2"; shift 2; fi
[ $# -ge 3 ] || { echo "usage: benches/builds.sh [-n RUNS] OLD_BINARY NEW_BINARY <git repository path>..." >&2; exit 2; }
old="$(realpath "$1")"; new="$(realpath "$2")"; shift 2
here="$(cd "$(dirname "$0")/.." && pwd)"
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed" >&2; exit 1; }
. "$here/benches/settle.sh"
bench_start

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# A non-zero exit is timed too; GNU time's line about it goes to OUT.err.
timed() {
  local out="$1"; shift; sync
  /usr/bin/time -f '%e %M' -o "$out.one" "$@" >/dev/null 2>>"$out.err" || true
  grep '^Command ' "$out.one" >> "$out.err" || true
  grep -v '^Command ' "$out.one" >> "$out"
}
mkit_refs() { (cd "$1/.mkit" && find refs -type f | sort | while read -r f; do echo "$f $(cat "$f")"; done); }
git_refs() { git -C "$1" for-each-ref --format='%(refname) %(objectname)'; }
cell() { printf '%.2f / %.2f s (%s x), %d / %d MB' "$(col 1 "$1")" "$(col 1 "$2")" \
  "$(ratio "$(col 1 "$1")" "$(col 1 "$2")")" $(( $(col 2 "$1") / 1024 )) $(( $(col 2 "$2") / 1024 )); }

echo "machine: $(nproc) cores; median of $runs runs each, alternating; load $(cut -d' ' -f1 /proc/loadavg); $(date -u +%Y-%m-%d)"
echo "old: $old"
echo "new: $new"
echo
echo "| repository | import (old / new) | no-op fetch | export to a local path | outputs |"
echo "|---|---|---|---|---|"
failed=0
for repo in "$@"; do
  repo="$(cd "$repo" && pwd)"; name="$(basename "$repo" .git)"; w="$work/$name"; mkdir -p "$w"
  for i in $(seq "$runs"); do
    for b in old new; do
      bin="${!b}"
      timed "$w/$b.import" "$bin" import "$repo" "$w/$b$i" --key "$key" --quiet
      (cd "$w/$b$i" && timed "$w/$b.fetch" "$bin" fetch --key "$key" --quiet)
      (cd "$w/$b$i" && timed "$w/$b.export" "$bin" export "$w/$b$i-mirror.git" --no-attest --quiet)
    done
  done
  same="identical"
  diff <(mkit_refs "$w/old1") <(mkit_refs "$w/new1") >"$w/refs.diff" || { same="mkit refs DIFFER"; failed=1; }
  diff <(git_refs "$w/old1-mirror.git") <(git_refs "$w/new1-mirror.git") >"$w/mirror.diff" || { same="$same, mirrors DIFFER"; failed=1; }
  echo "| $name ($(mkit_refs "$w/new1" | wc -l) refs) | $(cell "$w/old.import" "$w/new.import") | $(cell "$w/old.fetch" "$w/new.fetch") | $(cell "$w/old.export" "$w/new.export") | $same |"
done
exit "$failed"
