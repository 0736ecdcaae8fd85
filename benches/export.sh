#!/usr/bin/env bash
# Time a whole export, ours against the reference, side by side on one machine.
#
#   benches/export.sh <mkit repository path> [runs]
#
# Builds mkit-bridge in release mode, then exports the repository's branches
# and tags to a fresh local bare mirror with `mkit git export --no-attest`
# (the reference 0.5.0, which must be on PATH) and with `mkit-bridge export`,
# alternating, `runs` times each (default 3), each from its own copy of the
# repository (any existing `mirror` state is dropped from the copies). It
# checks that both mirrors hold identical refs (`git for-each-ref`), times a
# no-change re-run of each, and prints the median wall times and the ratios.
# Nothing is written outside a temp directory.
set -euo pipefail
repo="$(cd "${1:?usage: benches/export.sh <mkit repository path> [runs]}" && pwd)"
runs="${2:-3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
ours="$here/target/release/mkit-bridge"
command -v mkit >/dev/null || { echo "the reference mkit is not on PATH" >&2; exit 1; }
[ -d "$repo/.mkit" ] || { echo "$repo is not an mkit repository" >&2; exit 1; }

# Let the filesystem settle first (see settle.sh).
. "$here/benches/settle.sh"
settle_wait
work="$(mktemp -d)"
trap 'settle_cleanup "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
copy() { cp -a "$repo" "$1"; rm -rf "$1/.mkit/git/mirror" "$1/.mkit/git-mirror.lock"; }

theirs_t=(); ours_t=(); theirs_re=(); ours_re=()
for i in $(seq "$runs"); do
  copy "$work/theirs$i"; copy "$work/ours$i"
  sync
  t=$(now); (cd "$work/theirs$i" && mkit git export "$work/mirror-theirs$i" --no-attest >/dev/null 2>"$work/theirs$i.err") || true
  theirs_t+=("$(elapsed "$t")")
  t=$(now); (cd "$work/ours$i" && "$ours" export "$work/mirror-ours$i" --no-attest --quiet >/dev/null 2>"$work/ours$i.err") || true
  ours_t+=("$(elapsed "$t")")
  t=$(now); (cd "$work/theirs$i" && mkit git export "$work/mirror-theirs$i" --no-attest >/dev/null 2>&1) || true
  theirs_re+=("$(elapsed "$t")")
  t=$(now); (cd "$work/ours$i" && "$ours" export "$work/mirror-ours$i" --no-attest --quiet >/dev/null 2>&1) || true
  ours_re+=("$(elapsed "$t")")
done

refs_of() { git -C "$1" for-each-ref --format='%(refname) %(objectname)'; }
n=$(refs_of "$work/mirror-ours1" | wc -l)
if [ "$n" -gt 0 ] && diff <(refs_of "$work/mirror-theirs1") <(refs_of "$work/mirror-ours1") >"$work/refs.diff"; then
  same="identical ($n refs)"
else
  same="DIFFERENT (see below)"
fi
th=$(printf '%s\n' "${theirs_t[@]}" | median); us=$(printf '%s\n' "${ours_t[@]}" | median)
thr=$(printf '%s\n' "${theirs_re[@]}" | median); usr=$(printf '%s\n' "${ours_re[@]}" | median)
objects=$(find "$repo/.mkit/objects" -type f | wc -l)
echo "repository:        $repo ($objects mkit objects, $(git -C "$work/mirror-ours1" count-objects -v | awk '/in-pack/ {print $2}') git objects, $n refs)"
echo "machine:           $(nproc) cores; median of $runs runs each, alternating"
echo "refs and ids:      $same"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
printf 'full export:       reference %.2f s, ours %.2f s, ratio %sx\n' "$th" "$us" "$(ratio "$th" "$us")"
printf 'no-change re-run:  reference %.2f s, ours %.2f s, ratio %sx\n' "$thr" "$usr" "$(ratio "$thr" "$usr")"
if [ "$same" != "identical ($n refs)" ]; then
  head -40 "$work/refs.diff"
  echo "--- reference stderr"; tail -5 "$work/theirs1.err"
  echo "--- our stderr"; tail -5 "$work/ours1.err"
  exit 1
fi
