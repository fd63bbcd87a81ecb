#!/usr/bin/env python3
"""A small static server for the built page and for model files in the Hub layout.

    python3 scripts/devserver.py [--port 8080] [--dist dist] [--base /three-answers/]
                                 [--models DIR] [--file REPO/FILE=PATH ...]

- `{base}...`  serves DIST (index.html for directories), as GitHub Pages would.
- `/hub/{repo}/resolve/{revision}/{file}` serves model files: `DIR/{repo}/{file}`
  (DIR laid out like a Hub mirror without the `resolve/main` part) or a file
  given with --file (e.g. --file test/Smol-GGUF/model.gguf=/cache/model.gguf).
  With CORS, Content-Length, single byte ranges (206), HEAD.
- `/hub/api/models/{repo}/tree/{revision}[/{dir}]` lists a repo's files as the
  Hub's API does, files over 1 MB as LFS files with their sha256 (`lfs.oid`).
- `/__requests` returns the request log as JSON ({"count": n, "requests": [...]});
  `/__requests?reset=1` clears it. Tests use it to count model downloads.
- `/__config?...` sets, for model files whose path contains a substring:
  `cut=SUB&cut_times=N`: the next N responses send the headers of the whole
  file (or range) but only half the body, then drop the connection;
  `etag=SUB&etag_mode=right|wrong|none`: send the file's sha256 (or a wrong
  one) as `X-Linked-Etag` and `ETag`, as the Hub does for LFS files.
  `etag_mode=tree-wrong`: no header, but a wrong sha256 in the tree listing.
  `slow=SUB&rate=BYTES_PER_SECOND`: send such files at about that rate.
  `nolength=SUB`: send such files without Content-Length (the end of the
  body is the end of the connection).
  `/__config?reset=1` clears all of them. Answers the current settings as JSON.
  Also `--cut-once SUB` on the command line.
- `--isolation`: every response carries COOP/COEP (a host that sends
  headers, so the page is cross-origin isolated from its first load);
  without it the page gets them from its service worker, as on GitHub Pages.
- `--missing SUB`: page files whose name contains SUB answer 404 (tests:
  a threaded engine that cannot load).

Binds 127.0.0.1 only. Prints `devserver: http://127.0.0.1:PORT/` once listening
(--port 0 picks a free port). Python standard library only.
"""
import argparse
import json
import mimetypes
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 20
TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
         ".html": "text/html; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml"}


class State:
    def __init__(self, args):
        self.dist = os.path.abspath(args.dist)
        self.base = "/" + args.base.strip("/") + "/" if args.base.strip("/") else "/"
        self.models = os.path.abspath(args.models) if args.models else None
        self.files = {}
        for spec in args.file or []:
            key, _, path = spec.partition("=")
            if not path:
                sys.exit(f"devserver: --file wants REPO/FILE=PATH, got {spec!r}")
            self.files[key.strip("/")] = os.path.abspath(path)
        self.lock = threading.Lock()
        self.log = []
        self.cut = {}    # substring -> responses left to cut
        self.etag = {}   # substring -> "right" | "wrong" | "none"
        self.slow = {}   # substring -> bytes per second
        self.nolength = set()
        self.sha = {}    # (path, mtime) -> sha256 hex
        for sub in args.cut_once or []:
            self.cut[sub] = 1
        self.isolation = args.isolation
        self.missing = args.missing or []

    def sha256(self, full):
        import hashlib
        key = (full, os.path.getmtime(full))
        with self.lock:
            if key in self.sha:
                return self.sha[key]
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        with self.lock:
            self.sha[key] = h.hexdigest()
        return self.sha[key]


class Handler(BaseHTTPRequestHandler):
    server_version = "three-answers-devserver"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the log is at /__requests
        if os.environ.get("DEVSERVER_VERBOSE"):
            sys.stderr.write("devserver: " + fmt % args + "\n")

    @property
    def st(self) -> State:
        return self.server.state

    def record(self, status):
        with self.st.lock:
            self.st.log.append({"method": self.command, "path": self.path, "status": status,
                                "range": self.headers.get("Range")})

    def cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "Range, Content-Type")
        self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag, X-Linked-Etag")
        if self.st.isolation:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")

    def do_OPTIONS(self):
        self.send_response(204)
        self.cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self.handle_get(head=True)

    def do_GET(self):
        self.handle_get(head=False)

    def simple(self, status, body, ctype="text/plain; charset=utf-8", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.record(status)
        self.send_response(status)
        self.cors()
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_get(self, head):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if path == "/__requests":
            with self.st.lock:
                body = json.dumps({"count": len(self.st.log), "requests": self.st.log})
                if "reset=1" in url.query:
                    self.st.log = []
            return self.simple(200, body, "application/json")
        if path == "/__config":
            q = urllib.parse.parse_qs(url.query)
            with self.st.lock:
                if "reset" in q:
                    self.st.cut, self.st.etag, self.st.slow, self.st.nolength = {}, {}, {}, set()
                if "nolength" in q:
                    self.st.nolength.add(q["nolength"][0])
                if "slow" in q:
                    self.st.slow[q["slow"][0]] = int(q.get("rate", [str(8 << 20)])[0])
                if "cut" in q:
                    self.st.cut[q["cut"][0]] = int(q.get("cut_times", ["1"])[0])
                if "etag" in q:
                    self.st.etag[q["etag"][0]] = q.get("etag_mode", ["right"])[0]
                body = json.dumps({"cut": self.st.cut, "etag": self.st.etag, "slow": self.st.slow})
            return self.simple(200, body, "application/json")
        if path.startswith("/hub/api/"):
            return self.serve_tree(path[len("/hub/"):])
        if path.startswith("/hub/"):
            return self.serve_model(path[len("/hub/"):], head)
        if path + "/" == self.st.base:
            return self.simple(301, "", extra={"Location": self.st.base})
        if not path.startswith(self.st.base):
            return self.simple(404, f"not found: {path} (the page is at {self.st.base})")
        rel = path[len(self.st.base):]
        full = os.path.normpath(os.path.join(self.st.dist, rel))
        if not (full == self.st.dist or full.startswith(self.st.dist + os.sep)):
            return self.simple(403, "forbidden")
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        if not os.path.isfile(full) or any(m in rel for m in self.st.missing):
            return self.simple(404, f"not found: {path}")
        self.send_file(full, head, cache="no-cache")

    def serve_tree(self, rest):
        # api/models/{owner}/{name}/tree/{revision}[/{dir}]
        parts = rest.split("/")
        if len(parts) < 6 or parts[0] != "api" or parts[1] != "models" or parts[4] != "tree":
            return self.simple(404, "api paths are /hub/api/models/{owner}/{name}/tree/{revision}[/{dir}]")
        repo, sub = "/".join(parts[2:4]), "/".join(parts[6:])
        found = {}
        for key, full in self.st.files.items():
            if key.startswith(repo + "/"):
                found[key[len(repo) + 1:]] = full
        if self.st.models and os.path.isdir(os.path.join(self.st.models, repo)):
            root = os.path.join(self.st.models, repo)
            for dirpath, _, names in os.walk(root):
                for n in names:
                    found.setdefault(os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/"), os.path.join(dirpath, n))
        if not found:
            return self.simple(404, json.dumps({"error": f"Repository not found: {repo}"}), "application/json")
        items = []
        for path, full in sorted(found.items()):
            if os.path.dirname(path) != sub:
                continue
            size = os.path.getsize(full)
            item = {"type": "file", "oid": "0" * 40, "size": size, "path": path}
            if size > (1 << 20):
                with self.st.lock:
                    mode = next((m for s, m in self.st.etag.items() if s in f"{repo}/{path}"), "none")
                sha = self.st.sha256(full)
                if mode in ("wrong", "tree-wrong"):
                    sha = "0" * 63 + ("1" if sha[-1] != "1" else "2")
                item["lfs"] = {"oid": sha, "size": size, "pointerSize": 134}
            items.append(item)
        return self.simple(200, json.dumps(items), "application/json")

    def serve_model(self, rest, head):
        # {repo (owner/name)}/resolve/{revision}/{file...}
        parts = rest.split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self.simple(404, "hub paths are /hub/{owner}/{name}/resolve/{revision}/{file}")
        repo, file = "/".join(parts[:2]), "/".join(parts[4:])
        key = f"{repo}/{file}"
        full = self.st.files.get(key)
        if full is None and self.st.models:
            full = os.path.normpath(os.path.join(self.st.models, repo, file))
            if not full.startswith(self.st.models + os.sep):
                return self.simple(403, "forbidden")
        if not full or not os.path.isfile(full):
            return self.simple(404, f"Entry not found: {key}")
        extra, cut = {}, False
        with self.st.lock:
            mode = next((m for sub, m in self.st.etag.items() if sub in key), "none")
            rate = next((r for sub, r in self.st.slow.items() if sub in key), None)
            nolength = any(sub in key for sub in self.st.nolength)
            for sub, left in self.st.cut.items():
                if sub in key and left > 0 and not head:
                    self.st.cut[sub] = left - 1
                    cut = True
                    break
        if mode in ("right", "wrong"):
            sha = self.st.sha256(full)
            if mode == "wrong":
                sha = "0" * 63 + ("1" if sha[-1] != "1" else "2")
            extra = {"X-Linked-Etag": f'"{sha}"', "ETag": f'"{sha}"'}
        self.send_file(full, head, cache="no-store", extra=extra, cut=cut, rate=rate, nolength=nolength)

    def send_file(self, full, head, cache, extra=None, cut=False, rate=None, nolength=False):
        size = os.path.getsize(full)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            try:
                if a:
                    start, end = int(a), (int(b) if b else size - 1)
                else:
                    start, end = max(0, size - int(b)), size - 1
                end = min(end, size - 1)
                if start > end or start >= size:
                    raise ValueError
                status = 206
            except ValueError:
                return self.simple(416, "bad range", extra={"Content-Range": f"bytes */{size}"})
        length = end - start + 1 if size else 0
        self.record(status)
        self.send_response(status)
        self.cors()
        ctype = TYPES.get(os.path.splitext(full)[1]) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        self.send_header("Content-Type", ctype)
        if nolength:
            self.close_connection = True
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", cache)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if head or not length:
            return
        with open(full, "rb") as f:
            f.seek(start)
            left = length // 2 if cut else length
            if cut:
                self.close_connection = True
            try:
                while left > 0:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        break
                    self.wfile.write(data)
                    left -= len(data)
                    if rate:
                        import time
                        time.sleep(len(data) / rate)
            except (BrokenPipeError, ConnectionResetError):
                pass
        if cut:
            import socket
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--dist", default=os.path.join(os.path.dirname(__file__), "..", "dist"))
    ap.add_argument("--base", default="/three-answers/")
    ap.add_argument("--models", help="folder laid out as {owner}/{name}/{file}")
    ap.add_argument("--file", action="append", help="REPO/FILE=PATH: serve PATH as /hub/REPO/resolve/main/FILE")
    ap.add_argument("--cut-once", action="append", help="SUB: cut the next response of a model file whose path contains SUB halfway")
    ap.add_argument("--isolation", action="store_true", help="send COOP/COEP with every response (cross-origin isolated from the first load)")
    ap.add_argument("--missing", action="append", help="SUB: page files whose name contains SUB answer 404")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print(f"devserver: http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
