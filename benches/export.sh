#!/usr/bin/env bash
# Time whole exports, ours against the reference, side by side on one machine.
#
#   benches/export.sh [-n RUNS] <mkit repository path>...
#
# Builds mkit-bridge in release mode, then, for each repository, exports its
# branches and tags to a fresh local bare mirror with `mkit git export
# --no-attest` (the reference 0.5.0, which must be on PATH) and with
# `mkit-bridge export --no-attest`, alternating, RUNS times each (default 3),
# each from its own copy of the repository (any existing `mirror` state is
# dropped from the copies), and times a no-change re-run of each. Every run
# goes through `/usr/bin/time` for the peak RSS. It checks that both mirrors
# hold identical refs (`git for-each-ref`) and that ours passes `git fsck
# --strict`, and prints one table (median wall times, ratios, peak RSS, git
# objects in each mirror and the size of its objects directory: a local
# export writes its pack without compression, see spec/EXPORT.md). Nothing is
# written outside a temp directory.
set -euo pipefail
usage="usage: benches/export.sh [-n RUNS] <mkit repository path>..."
. "$(dirname "$0")/lib.sh"
bench_prepare
refs_of() { git -C "$1" for-each-ref --format='%(refname) %(objectname)'; }
git_mb() { du -sm "$1/objects" | awk '{print $1}'; }
git_objects() { git -C "$1" count-objects -v | awk '/^count:|^in-pack:/ {n += $2} END {print n}'; }

for repo in "$@"; do
  repo="$(cd "$repo" && pwd)"; name="$(basename "$repo")"; w="$work/$name"; mkdir -p "$w"
  [ -d "$repo/.mkit" ] || { echo "$repo is not an mkit repository" >&2; exit 1; }
  copy() { cp -a "$repo" "$1"; rm -rf "$1/.mkit/git/mirror" "$1/.mkit/git-mirror.lock"; }
  for i in $(seq "$runs"); do
    copy "$w/theirs$i"; copy "$w/ours$i"
    (cd "$w/theirs$i" && timed "$w/theirs.t" mkit git export "$w/mirror-theirs$i" --no-attest)
    (cd "$w/ours$i" && timed "$w/ours.t" "$ours" export "$w/mirror-ours$i" --no-attest --quiet)
    (cd "$w/theirs$i" && timed "$w/theirs.re" mkit git export "$w/mirror-theirs$i" --no-attest)
    (cd "$w/ours$i" && timed "$w/ours.re" "$ours" export "$w/mirror-ours$i" --no-attest --quiet)
  done
  n=$(refs_of "$w/mirror-ours1" | wc -l)
  same="identical"
  if [ "$n" -eq 0 ] || ! diff <(refs_of "$w/mirror-theirs1") <(refs_of "$w/mirror-ours1") >"$w/refs.diff"; then
    same="DIFFERENT"; failed=1
    { echo "== $name: mirror refs differ"; head -20 "$w/refs.diff"; tail -3 "$w/theirs.t.err" "$w/ours.t.err"; } >&2
  fi
  git -C "$w/mirror-ours1" fsck --strict --no-progress >/dev/null 2>&1 || { same="$same, FSCK FAILS"; failed=1; }
  bench_row "$w" "$name" "$n" "$same" "$(git_objects "$w/mirror-theirs1") ($(git_mb "$w/mirror-theirs1") MB)" \
    "$(git_objects "$w/mirror-ours1") ($(git_mb "$w/mirror-ours1") MB)"
done

bench_report "| repository | mirror refs | reference | mkit-bridge | ratio | git objects, size (ref / ours) | peak RSS (ref / ours) | no-change re-run (ref / ours) |"
