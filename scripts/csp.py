#!/usr/bin/env python3
"""Trunk post_build hook: writes the page's Content-Security-Policy into index.html.

A <meta http-equiv> tag, first in <head>, allowing scripts only from the
page's own origin plus the inline scripts Trunk and index.html write (by
their sha256, computed here from the built file), WebAssembly compilation,
the service worker and the web worker from the same origin, and network
connections to the page's origin and the Hugging Face Hub. Everything else
(other scripts, eval, plugins, forms, <base>) is refused. Runs before
sw-build-id.py, so the offline shell's build id covers the final index.html.
Python standard library only.
"""
import base64
import hashlib
import os
import re
import sys

staging = os.environ.get("TRUNK_STAGING_DIR") or (sys.argv[1] if len(sys.argv) > 1 else None)
if not staging:
    sys.exit("csp: TRUNK_STAGING_DIR is not set")
path = os.path.join(staging, "index.html")
html = open(path, encoding="utf-8").read()
inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
policy = "; ".join([
    "default-src 'none'",
    f"script-src 'self' 'wasm-unsafe-eval' {hashes}",
    "worker-src 'self'",
    "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co",
    "style-src 'self'",
    "img-src 'self' data:",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
])
html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\s*', "", html)
html = html.replace('<meta charset="utf-8" />', f'<meta charset="utf-8" />\n    <meta http-equiv="Content-Security-Policy" content="{policy}" />', 1)
if "Content-Security-Policy" not in html:
    sys.exit("csp: no <meta charset=\"utf-8\" /> in index.html to put the policy after")
open(path, "w", encoding="utf-8").write(html)
print(f"csp: {len(inline)} inline script(s) allowed by hash")
