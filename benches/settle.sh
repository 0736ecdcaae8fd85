# Sourced by the whole-run benchmark scripts: let the filesystem settle
# before timing, and note when this invocation's cleanup happened.
#
# On ext4 without a journal (this project's machine) the inode allocator
# passes over every inode freed in the last 60 s -- 360 s while its
# inode-table block is dirty, which allocating a neighbour makes it -- one by
# one, so creating files for minutes after a mass deletion (say the cleanup of
# a previous benchmark invocation) can be several times slower; `perf` then
# shows `recently_deleted` on top. Both tools would suffer, not equally, and
# the ratio would measure the disk. So every cleanup leaves a time stamp, and
# the next invocation waits until six minutes have passed since it. Deleting
# other large trees just before a benchmark has the same effect: wait six
# minutes after doing so.

settle_stamp="${TMPDIR:-/tmp}/.mkit-bridge-bench-cleanup"

# Wait until six minutes have passed since the last recorded cleanup.
settle_wait() {
  if [ -f "$settle_stamp" ]; then
    local wait_s=$(( $(cat "$settle_stamp") + 360 - $(date +%s) ))
    if [ "$wait_s" -gt 0 ]; then
      echo "waiting ${wait_s}s for an earlier cleanup to settle" >&2
      sleep "$wait_s"
    fi
  fi
  sync
}

# Remove a work directory and record when.
settle_cleanup() {
  rm -rf "$1"
  sync
  date +%s > "$settle_stamp"
}

# The start of a whole-run benchmark: wait for the disk, make the run's work
# directory (removed, and the removal stamped, on exit) and an importer key
# in it. Sets $work and $key.
bench_start() {
  settle_wait
  work="$(mktemp -d)"
  trap 'settle_cleanup "$work"' EXIT
  mkdir -m 700 "$work/keys"
  printf '\x42%.0s' $(seq 32) > "$work/keys/import.key"
  chmod 600 "$work/keys/import.key"
  key="$work/keys/import.key"
}
