# Sourced by scripts/test.sh and scripts/test-e2e.sh. `bounded SECONDS command...`
# runs the command under `timeout` (SIGTERM, then SIGKILL 30 s later) and,
# when it ran over, says which command and its bound, so a hang is named here
# rather than by CI's own limit (90 min). Returns the command's status.
bounded() {
  local limit=$1 rc=0; shift
  timeout --kill-after=30 "$limit" "$@" || rc=$?
  if [[ $rc == 124 || $rc == 137 ]]; then echo "stopped after its bound of $limit s: $*" >&2; fi
  return "$rc"
}
