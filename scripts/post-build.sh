#!/usr/bin/env bash
# Trunk's post_build hook (Trunk.toml), in $TRUNK_STAGING_DIR, in this order
# (Trunk starts the hooks of one stage together, so one script orders them):
#   1. the threaded engine's second build (scripts/build-worker-mt.sh);
#   2. index.html's Content-Security-Policy (scripts/csp.py);
#   3. the offline shell's build id and file list, over every file above (scripts/sw-build-id.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
bash "$HERE/build-worker-mt.sh"
python3 "$HERE/csp.py"
python3 "$HERE/sw-build-id.py"
