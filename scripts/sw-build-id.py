#!/usr/bin/env python3
"""Trunk post_build hook: writes the build id and the file list into sw.js.

The build id is a hash of every other file Trunk staged (names and bytes), so
any change to the page or the worker gives a new service worker and cache.
Runs in $TRUNK_STAGING_DIR (see Trunk.toml); Python standard library only.
"""
import hashlib
import json
import os
import sys

staging = os.environ.get("TRUNK_STAGING_DIR") or (sys.argv[1] if len(sys.argv) > 1 else None)
if not staging:
    sys.exit("sw-build-id: TRUNK_STAGING_DIR is not set")
sw = os.path.join(staging, "sw.js")
if not os.path.isfile(sw):
    sys.exit(f"sw-build-id: no sw.js in {staging}")
assets, h = [], hashlib.sha256()
for dirpath, dirnames, filenames in os.walk(staging):
    dirnames[:] = sorted(d for d in dirnames if d != "models")
    for name in sorted(filenames):
        rel = os.path.relpath(os.path.join(dirpath, name), staging).replace(os.sep, "/")
        if rel == "sw.js":
            continue
        assets.append(rel)
        h.update(rel.encode() + b"\0")
        with open(os.path.join(dirpath, name), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
build_id = h.hexdigest()[:16]
text = open(sw, encoding="utf-8").read()
text = text.replace("'__BUILD_ID__'", json.dumps(build_id)).replace("__ASSETS__", json.dumps(["", *assets]))
open(sw, "w", encoding="utf-8").write(text)
print(f"sw-build-id: {build_id} ({len(assets)} files)")
