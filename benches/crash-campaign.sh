#!/usr/bin/env bash
# Crash campaign: kill -9 import, fetch and export at random points of real
# history, finish each with a second run, and compare with a clean run.
#
#   benches/crash-campaign.sh [-n KILLS] [-r REPO] [-b BINARY] [-p PHASES] [-f FRACTION] [-k] [-w DIR]
#
#   -n KILLS   kill points per phase (default 50)
#   -r REPO    a bare git repository (default /work/data/ripgrep.git)
#   -b BINARY  the mkit-bridge to test (default: build target/release/mkit-bridge)
#   -p PHASES  comma-separated subset of import,fetch,export (default: all three)
#   -f FRACTION  kill delays range over [0, FRACTION * T) (default 1; less when
#              trials run faster than the clean run, as with a warm cache)
#   -k         keep the work directory (default: kept only when a trial fails)
#   -w DIR     work directory (default: a new temp directory)
#
# Phases:
#   import  a fresh `import` of REPO, killed after a random delay drawn from
#           [0, T) where T is a clean run's wall time, then run again.
#   fetch   a repository imported from an older cut of REPO (every branch
#           reset 40 commits back, the newer half of the tags removed); the
#           upstream then becomes REPO and `fetch` is killed and run again.
#   export  a copy of the imported repository (its tracking branches as local
#           branches, plus its tags, and a repository key) exported to a
#           fresh destination path, killed and run again.
# Each kill ends the run's whole process group (the bridge and any git it
# started), as a crash of the job would. The finished trial must equal the
# clean run: every ref, every object file's bytes, every attestation, the
# raw bytes, the map (as a sorted list of lines: a rebuilt map holds the same
# lines in another order), the ref state and stamps, the staging mirror's
# refs (and, for export, the destination's refs and objects), and no temp
# file may be left anywhere. Prints one line per trial and a summary; exits 1
# when any trial differs.
set -euo pipefail

kills=50
repo=/work/data/ripgrep.git
bin=""
phases="import,fetch,export"
keep=0
work=""
fraction=1
while getopts "n:r:b:p:f:kw:" opt; do
  case "$opt" in
    n) kills="$OPTARG" ;;
    r) repo="$OPTARG" ;;
    b) bin="$OPTARG" ;;
    p) phases="$OPTARG" ;;
    f) fraction="$OPTARG" ;;
    k) keep=1 ;;
    w) work="$OPTARG" ;;
    *) sed -n "2,17p" "$0" >&2; exit 64 ;;
  esac
done
repo="$(cd "$repo" && pwd)"
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$bin" ]; then
  cargo build --release --quiet --manifest-path "$here/Cargo.toml"
  bin="$here/target/release/mkit-bridge"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[ -n "$work" ] || work="$(mktemp -d /tmp/crash-campaign.XXXXXX)"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
failures=0
cleanup() {
  if [ "$keep" = 0 ] && [ "$failures" = 0 ]; then rm -rf "$work"; else echo "work directory kept: $work" >&2; fi
}
trap cleanup EXIT

mkdir -m 700 -p "$work/keys"
printf '\x42%.0s' $(seq 32) > "$work/keys/import.key"
chmod 600 "$work/keys/import.key"
key="$work/keys/import.key"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
# A delay in [0, t) for trial i: the fractional part of i times the golden
# ratio, so that any number of trials spreads evenly over the run.
delay() { awk -v i="$1" -v t="$2" 'BEGIN { x = i * 0.6180339887498949; printf "%.3f", (x - int(x)) * t }'; }

# Run "$@" in repository $1 in its own process group; kill the group after
# $2 seconds. Prints "killed" or "finished <exit code>".
run_killed() {
  local dir="$1" after="$2"; shift 2
  (cd "$dir" && exec setsid "$@" >/dev/null 2>&1) &
  local pid=$!
  local start; start="$(now)"
  while kill -0 "$pid" 2>/dev/null; do
    if awk -v a="$(now)" -v b="$start" -v d="$after" 'BEGIN { exit !(a - b >= d) }'; then
      kill -9 -- "-$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      echo killed
      return
    fi
    sleep 0.005
  done
  local rc=0
  wait "$pid" || rc=$?
  echo "finished $rc"
}

# Everything a finished run must have written, one line per fact (the
# trial's own path replaced, so that trials compare with the clean run).
manifest() {
  local dir="$1" remote="$2"
  local m="$dir/.mkit" s="$dir/.mkit/git/$2"
  {
    (
      cd "$m"
      find refs -type f | sort | while read -r f; do echo "ref $f $(cat "$f")"; done
      if [ -f HEAD ]; then echo "HEAD $(cat HEAD)"; fi
      find objects -type f -print0 | sort -z | xargs -0r sha256sum | sed 's/^/object /'
      if [ -d attestations ]; then
        find attestations -type f -print0 | sort -z | xargs -0r sha256sum | sed 's/^/attestation /'
      fi
    )
    if [ -d "$s" ]; then
      (
        cd "$s"
        if [ -d raw ]; then find raw -type f -print0 | sort -z | xargs -0r sha256sum | sed 's/^/raw /'; fi
        if [ -f map ]; then sort map | sed 's/^/map /'; fi
        for f in refs refs-import direction source dest signer import-spec normalized importing; do
          if [ -e "$f" ]; then echo "stamp $f present"; sed "s/^/$f /" "$f"; fi
        done
        if [ -d repo.git ]; then
          git -C repo.git for-each-ref --format='staging %(refname) %(objectname)'
        fi
      )
    fi
    # No temp file of any writer may be left.
    find "$dir" \( -name '.*.tmp.*' -o -name 'mkit-bridge-pack.tmp.*' -o -name 'tmp_pack_*' \
      -o -name 'tmp_idx_*' -o -name '.tmp??????' -o -name '*.partial' \) -printf 'TEMP %P\n' | sort
  } | sed "s|$dir|<trial>|g"
}

# The destination's refs and objects. A receive-pack killed with the run
# leaves its quarantine (`objects/tmp_objdir-incoming-*`): git's own
# leftover in a repository that is not ours, which git's gc removes; it is
# counted (in $2) but not compared.
dest_manifest() {
  git -C "$1" for-each-ref --format='dest %(refname) %(objectname)'
  git -C "$1" cat-file --batch-all-objects --batch-check | sort | sed 's/^/dest-object /'
  find "$1" -path '*/tmp_objdir-incoming-*' -prune -o \( -name 'tmp_*' -o -name '*.lock' \) \
    -printf 'TEMP dest/%P\n' | sort
  if [ -n "${2:-}" ] && [ -n "$(find "$1/objects" -maxdepth 1 -name 'tmp_objdir-incoming-*')" ]; then
    echo quarantine > "$2"
  fi
}

# Compare trial $2 with the clean manifest $1; count and report a failure.
check() {
  local want="$1" got="$2" label="$3"
  if diff -q "$want" "$got" >/dev/null; then
    return 0
  fi
  failures=$((failures + 1))
  diff "$want" "$got" > "$got.diff" || true
  echo "  DIFFERS: $label ($(wc -l < "$got.diff") diff lines, see $got.diff)"
  head -5 "$got.diff" | sed 's/^/    /'
  return 1
}

# kill-phase <name> <trial-setup-fn> <command...>: the clean run first (its
# manifest and wall time), then `kills` trials.
declare -A summary
campaign() {
  local phase="$1" setup="$2" remote="$3"; shift 3
  local cmd=("$@")
  echo "== $phase: $kills kill points"
  local clean="$work/$phase-clean"
  $setup "$clean"
  local t0; t0="$(now)"
  (cd "$clean" && "${cmd[@]}" >/dev/null 2>"$work/$phase-clean.err") || {
    echo "the clean $phase run failed:" >&2; cat "$work/$phase-clean.err" >&2; exit 1;
  }
  local wall; wall="$(since "$t0")"
  manifest "$clean" "$remote" > "$work/$phase-clean.manifest"
  if [ "$phase" = export ]; then dest_manifest "$dest" >> "$work/$phase-clean.manifest"; fi
  echo "clean run: ${wall}s, $(grep -c '^object ' "$work/$phase-clean.manifest") objects"
  local killed=0 finished=0 ok=0 swept=0 sweeps=0 rebuilds=0 quarantined=0 i
  for i in $(seq 1 "$kills"); do
    local trial="$work/$phase-$i"
    $setup "$trial"
    local d; d="$(delay "$i" "$(awk -v w="$wall" -v f="$fraction" 'BEGIN { print w * f }')")"
    local how; how="$(run_killed "$trial" "$d" "${cmd[@]}")"
    [ "$how" = killed ] && killed=$((killed + 1)) || finished=$((finished + 1))
    local rc=0 t1; t1="$(now)"
    (cd "$trial" && "${cmd[@]}" >"$trial.out" 2>"$trial.err") || rc=$?
    local again; again="$(since "$t1")"
    manifest "$trial" "$remote" > "$trial.manifest"
    if [ "$phase" = export ]; then
      dest_manifest "$dest" "$trial.quarantine" >> "$trial.manifest"
      if [ -e "$trial.quarantine" ]; then quarantined=$((quarantined + 1)); rm -f "$trial.quarantine"; fi
    fi
    local notes; notes="$(grep -h '^note: \(removed\|previous\)' "$trial.err" | tr '\n' ' ' || true)"
    local n; n="$(sed -n 's/^note: removed \([0-9]*\) temp files.*/\1/p' "$trial.err" | head -1)"
    if [ -n "$n" ]; then swept=$((swept + n)); sweeps=$((sweeps + 1)); fi
    if grep -q 'rebuilding the map' "$trial.err"; then rebuilds=$((rebuilds + 1)); fi
    if [ "$rc" != 0 ]; then
      failures=$((failures + 1))
      echo "trial $i: kill at ${d}s ($how); the next run FAILED with $rc: $(head -c 300 "$trial.err")"
    elif check "$work/$phase-clean.manifest" "$trial.manifest" "$phase trial $i"; then
      ok=$((ok + 1))
      echo "trial $i: kill at ${d}s ($how); next run ${again}s, identical. ${notes}"
      rm -rf "$trial"
    else
      echo "trial $i: kill at ${d}s ($how) -> differs"
    fi
  done
  summary[$phase]="$phase: $kills trials ($killed killed mid-run, $finished finished before the kill), $ok identical after the next run; $sweeps next runs removed $swept temp files in all; $rebuilds rebuilt the map"
  if [ "$quarantined" -gt 0 ]; then
    summary[$phase]+="; $quarantined left a receive-pack quarantine in the destination (not compared)"
  fi
  echo "${summary[$phase]}"
}

# --- import -----------------------------------------------------------------
setup_import() { rm -rf "$1"; "$bin" init "$1" >/dev/null; }

# --- fetch ------------------------------------------------------------------
upstream="$work/upstream.git"
base="$work/fetch-base"
prepare_fetch() {
  rm -rf "$upstream" "$base"
  git clone --quiet --mirror "$repo" "$upstream"
  # An older cut: every branch 40 commits back (or its root), the newer
  # half of the tags gone.
  git -C "$upstream" for-each-ref --format='%(refname)' refs/heads | while read -r r; do
    local old; old="$(git -C "$upstream" rev-list --max-count=1 --skip=40 "$r")"
    [ -n "$old" ] || old="$(git -C "$upstream" rev-list --max-parents=0 "$r" | head -1)"
    git -C "$upstream" update-ref "$r" "$old"
  done
  local tags n
  tags="$(git -C "$upstream" for-each-ref --sort=creatordate --format='%(refname)' refs/tags)"
  n="$(printf '%s\n' "$tags" | grep -c . || true)"
  printf '%s\n' "$tags" | tail -n "$((n / 2))" | while read -r r; do
    [ -n "$r" ] && git -C "$upstream" update-ref -d "$r"
  done
  "$bin" init "$base" >/dev/null
  (cd "$base" && "$bin" import --quiet --key "$key" "$upstream" >/dev/null)
  # The upstream moves on: the full history.
  git -C "$upstream" fetch --quiet --prune "$repo" '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'
}
setup_fetch() { rm -rf "$1"; cp -a "$base" "$1"; }

# --- export -----------------------------------------------------------------
source_repo="$work/export-source"
prepare_export() {
  rm -rf "$source_repo"
  "$bin" init "$source_repo" >/dev/null
  (cd "$source_repo" && "$bin" import --quiet --key "$key" "$repo" >/dev/null)
  # The tracking branches become local branches.
  (cd "$source_repo/.mkit/refs" && mkdir -p heads && cp -r remotes/upstream/. heads/)
  # The repository key the attestations are signed with.
  mkdir -m 700 -p "$source_repo/.mkit/keys"
  printf '\x24%.0s' $(seq 32) > "$source_repo/.mkit/keys/default.key"
  chmod 600 "$source_repo/.mkit/keys/default.key"
}
# One destination path for every trial (the attestations name it), made
# afresh for each.
dest="$work/export-dest.git"
setup_export() { rm -rf "$1" "$dest"; cp -a "$source_repo" "$1"; }

IFS=',' read -ra wanted <<< "$phases"
for phase in "${wanted[@]}"; do
  case "$phase" in
    import) campaign import setup_import upstream "$bin" import --key "$key" "$repo" ;;
    fetch) prepare_fetch; campaign fetch setup_fetch upstream "$bin" fetch --key "$key" ;;
    export)
      prepare_export
      campaign export setup_export mirror "$bin" export "$dest"
      ;;
    *) echo "unknown phase $phase" >&2; exit 64 ;;
  esac
done
echo "== summary"
for phase in "${wanted[@]}"; do echo "${summary[$phase]}"; done
echo "failures: $failures"
[ "$failures" = 0 ]
