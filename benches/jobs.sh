#!/usr/bin/env bash
# Time whole imports with one worker and with two, side by side.
#
#   benches/jobs.sh [-n RUNS] [-b BINARY] [-d] [-c] <git repository path>...
#
# Builds mkit-bridge in release mode (or takes BINARY), then, for each
# repository, imports it with `--jobs 1` and `--jobs 2`, alternating, RUNS
# times each (default 3), each into a fresh directory under the same key.
# Every run goes through `/usr/bin/time`; the table gives the median wall
# time, user+system CPU time and peak RSS of each, the speed-up (wall with
# one worker over wall with two), and the load average before and after
# (other processes on the machine take cores from the two workers). It
# checks that both give identical refs. Nothing is written outside a temp
# directory (under $TMPDIR), kept until the end (see settle.sh); with -d
# every import but the first of each kind is deleted once timed, which is
# only fair on a tmpfs (`TMPDIR=/dev/shm/x`: no disk to settle, and a large
# repository's runs would not fit in memory otherwise).
#
# With -c, each round also runs two `--jobs 1` imports at once, as a control
# for the host: "host 2x" is twice the one-worker wall over the wall of that
# pair, i.e. what two cores give two independent processes doing the same
# work at that moment. No program can expect more from `--jobs 2`; on a
# quiet host it is close to 2.00x, on a shared one it can drop well below.
set -euo pipefail
runs=3
ours=""
drop=0
control=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    -b) ours="$2"; shift 2 ;;
    -d) drop=1; shift ;;
    -c) control=1; shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: benches/jobs.sh [-n RUNS] [-b BINARY] [-d] [-c] <git repository path>..." >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$ours" ]; then
  cargo build --release --quiet --manifest-path "$here/Cargo.toml"
  ours="$here/target/release/mkit-bridge"
fi
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed" >&2; exit 1; }

. "$here/benches/settle.sh"
bench_start

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }
refs_of() { (cd "$1/.mkit" && find refs -type f | sort | while read -r f; do echo "$f $(cat "$f")"; done); }

if [ "$control" = 1 ]; then
  echo "| repository | runs | --jobs 1 wall | --jobs 2 wall | speed-up | two --jobs 1 at once | host 2x | CPU (1 / 2) | peak RSS (1 / 2) | load before / after |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
else
  echo "| repository | runs | --jobs 1 wall | --jobs 2 wall | speed-up | CPU (1 / 2) | peak RSS (1 / 2) | load before / after |"
  echo "|---|---|---|---|---|---|---|---|"
fi
for repo in "$@"; do
  repo="$(cd "$repo" && pwd)"; name="$(basename "$repo" .git)"; w="$work/$name"; mkdir -p "$w"
  load_before="$(cut -d' ' -f1 /proc/loadavg)"
  for i in $(seq "$runs"); do
    for j in 1 2; do
      sync
      # A refused checkout (exit 1, after the refs are imported) still
      # times the import; any other failure stops the script.
      if ! /usr/bin/time -f '%e %U %S %M' -o "$w/one" \
        "$ours" import "$repo" "$w/j$j-$i" --key "$key" --quiet --jobs "$j" >/dev/null 2>"$w/last"; then
        grep -q "check out" "$w/last" || { cat "$w/last" >&2; exit 1; }
      fi
      cat "$w/last" >> "$w/err"
      # GNU time puts "Command exited with non-zero status" first then.
      tail -n 1 "$w/one" | awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' >> "$w/j$j"
      if [ "$drop" = 1 ] && [ "$i" -gt 1 ]; then rm -rf "$w/j$j-$i"; fi
    done
    if [ "$control" = 1 ]; then
      sync
      start=$(date +%s.%N)
      for p in a b; do
        "$ours" import "$repo" "$w/p$p-$i" --key "$key" --quiet --jobs 1 >/dev/null 2>>"$w/err" &
      done
      # Exit codes are not checked here: a refused checkout exits 1, and
      # the pair is only timed.
      wait || true
      echo "$(date +%s.%N) $start" | awk '{printf "%.2f\n", $1 - $2}' >> "$w/pair"
      rm -rf "$w/pa-$i" "$w/pb-$i"
    fi
  done
  load_after="$(cut -d' ' -f1 /proc/loadavg)"
  diff <(refs_of "$w/j1-1") <(refs_of "$w/j2-1") >/dev/null || { echo "$name: refs differ between --jobs 1 and 2" >&2; exit 1; }
  w1=$(col 1 "$w/j1"); w2=$(col 1 "$w/j2")
  host=""
  if [ "$control" = 1 ]; then
    wp=$(median < "$w/pair")
    host=" ${wp} s | $(awk -v a="$w1" -v b="$wp" 'BEGIN{printf "%.2fx", 2 * a / b}') |"
  fi
  echo "| $name | $runs | ${w1} s | ${w2} s | $(awk -v a="$w1" -v b="$w2" 'BEGIN{printf "%.2fx", a/b}') |$host $(col 2 "$w/j1") / $(col 2 "$w/j2") s | $(( $(col 3 "$w/j1") / 1024 )) / $(( $(col 3 "$w/j2") / 1024 )) MB | $load_before / $load_after |"
done
