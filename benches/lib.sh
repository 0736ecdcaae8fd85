# Sourced by the whole-run benchmarks (benches/import.sh, benches/export.sh)
# after they set `usage`: what both share. Each script keeps its own
# per-repository runs and checks.
#
# Sourcing reads the script's arguments: `-n RUNS` first sets `runs`
# (default 3) and is shifted away, so "$@" is left holding the
# repositories; none is a usage error (exit 2). `here` is the repository
# root.

runs=3
if [ "${1:-}" = "-n" ]; then runs="$2"; shift 2; fi
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
. "$here/benches/settle.sh"

# Build mkit-bridge in release mode (`ours`), check for the reference `mkit`
# and GNU time, let the filesystem settle, and make the work directory
# `work`, removed (and the removal recorded) at exit.
bench_prepare() {
  cargo build --release --quiet --manifest-path "$here/Cargo.toml"
  ours="$here/target/release/mkit-bridge"
  command -v mkit >/dev/null || { echo "the reference mkit is not on PATH" >&2; exit 1; }
  [ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed for peak RSS" >&2; exit 1; }
  settle_wait
  work="$(mktemp -d)"
  trap 'settle_cleanup "$work"' EXIT
  rows=(); failed=0
}

# timed OUT CMD...: run CMD (in the current directory), append "wall_s rss_kb" to OUT.
# A run that exits non-zero (a refused default branch, a checkout both tools
# refuse) is still timed: GNU time's "Command exited with non-zero status"
# line goes to OUT.err, not into the figures.
timed() {
  local out="$1"; shift
  sync
  /usr/bin/time -f '%e %M' -o "$out.one" "$@" >/dev/null 2>>"$out.err" || true
  grep '^Command ' "$out.one" >> "$out.err" || true
  grep -v '^Command ' "$out.one" >> "$out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# bench_row DIR NAME REFS SAME OBJECTS_REF OBJECTS_OURS: add one table row
# from the timings in DIR (theirs.t, ours.t: first runs; theirs.re,
# ours.re: no-change re-runs).
bench_row() {
  local w="$1" th us thr usr
  th=$(col 1 "$w/theirs.t"); us=$(col 1 "$w/ours.t"); thr=$(col 1 "$w/theirs.re"); usr=$(col 1 "$w/ours.re")
  rows+=("$(printf '| %s | %s %s | %.2f s | %.2f s | **%sx** | %s / %s | %s / %s MB | %.2f / %.2f s |' \
    "$2" "$3" "$4" "$th" "$us" "$(ratio "$th" "$us")" "$5" "$6" \
    "$(mb "$(col 2 "$w/theirs.t")")" "$(mb "$(col 2 "$w/ours.t")")" "$thr" "$usr")")
}

# bench_report HEAD: the machine line, the table (HEAD names its columns),
# then exit with 1 if any check failed.
bench_report() {
  echo "machine: $(nproc) cores; median of $runs runs each, alternating; $(date -u +%Y-%m-%d)"
  echo
  echo "$1"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  exit "$failed"
}
