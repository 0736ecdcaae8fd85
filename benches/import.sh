#!/usr/bin/env bash
# Time a whole import, ours against the reference, side by side on one machine.
#
#   benches/import.sh <git repository path> [runs]
#
# Builds mkit-bridge in release mode, then imports the repository with
# `mkit git import` (the reference 0.5.0, which must be on PATH) and with
# `mkit-bridge import`, alternating, `runs` times each (default 3), each into
# a fresh directory under the same importer key. It checks that both give
# identical refs and ids, times a no-change re-run (`fetch`) of each, and
# prints the median wall times and the ratios. Nothing is written outside a
# temp directory.
set -euo pipefail
repo="$(cd "${1:?usage: benches/import.sh <git repository path> [runs]}" && pwd)"
runs="${2:-3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
ours="$here/target/release/mkit-bridge"
command -v mkit >/dev/null || { echo "the reference mkit is not on PATH" >&2; exit 1; }

# Let the filesystem settle first (see settle.sh).
. "$here/benches/settle.sh"
settle_wait
work="$(mktemp -d)"
trap 'settle_cleanup "$work"' EXIT

mkdir -m 700 "$work/keys"
printf '\x42%.0s' $(seq 32) > "$work/keys/import.key"
chmod 600 "$work/keys/import.key"

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
refs_of() {
  (cd "$1/.mkit" && find refs -type f | sort | while read -r f; do echo "$f $(cat "$f")"; done)
}

theirs_t=(); ours_t=(); theirs_re=(); ours_re=()
# Each timed run starts with nothing dirty in the page cache (`sync`), so a
# tool that flushes the whole filesystem does not pay for the other's writes.
for i in $(seq "$runs"); do
  sync; t=$(now); mkit git import "$repo" "$work/theirs$i" --key "$work/keys/import.key" >/dev/null 2>"$work/theirs$i.err" || true
  theirs_t+=("$(elapsed "$t")")
  sync; t=$(now); "$ours" import "$repo" "$work/ours$i" --key "$work/keys/import.key" --quiet >/dev/null 2>"$work/ours$i.err" || true
  ours_t+=("$(elapsed "$t")")
  sync; t=$(now); (cd "$work/theirs$i" && mkit git fetch --key "$work/keys/import.key" >/dev/null 2>&1) || true
  theirs_re+=("$(elapsed "$t")")
  sync; t=$(now); (cd "$work/ours$i" && "$ours" fetch --key "$work/keys/import.key" --quiet >/dev/null 2>&1) || true
  ours_re+=("$(elapsed "$t")")
done

if diff <(refs_of "$work/theirs1") <(refs_of "$work/ours1") >"$work/refs.diff"; then
  same="identical ($(refs_of "$work/ours1" | wc -l) refs)"
else
  same="DIFFERENT (see below)"
fi
th=$(printf '%s\n' "${theirs_t[@]}" | median); us=$(printf '%s\n' "${ours_t[@]}" | median)
thr=$(printf '%s\n' "${theirs_re[@]}" | median); usr=$(printf '%s\n' "${ours_re[@]}" | median)
echo "repository:        $repo ($(git -C "$repo" rev-list --all --objects | wc -l) objects, $(git -C "$repo" for-each-ref | wc -l) refs)"
echo "machine:           $(nproc) cores; median of $runs runs each, alternating"
echo "refs and ids:      $same"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
printf 'full import:       reference %.2f s, ours %.2f s, ratio %sx\n' "$th" "$us" "$(ratio "$th" "$us")"
printf 'no-change re-run:  reference %.2f s, ours %.2f s, ratio %sx\n' "$thr" "$usr" "$(ratio "$thr" "$usr")"
if [ "$same" != "identical ($(refs_of "$work/ours1" | wc -l) refs)" ]; then
  head -40 "$work/refs.diff"
  echo "--- reference stderr"; tail -5 "$work/theirs1.err"
  echo "--- our stderr"; tail -5 "$work/ours1.err"
  exit 1
fi
