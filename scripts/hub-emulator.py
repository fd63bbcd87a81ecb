#!/usr/bin/env python3
"""An emulation of huggingface.co on two loopback origins, for browser tests.

    python3 scripts/hub-emulator.py --repo OWNER/NAME=DIR [--repo ...] [--hub-port 0] [--cdn-port 0]

- The Hub listens on 127.0.0.1 and is addressed as http://localhost:P (another
  origin than a page on 127.0.0.1); the CDN listens on 127.0.0.2:Q.
- Hub: `/{repo}/resolve/{rev}/{path}` (LFS files: 302 to a signed CDN URL;
  others: 307 to a relative `/api/resolve-cache/models/{repo}/{commit}/{path}`),
  `/{repo}/raw/{rev}/{path}`, `/api/models/{repo}/tree/{rev}[/{dir}]`,
  `/api/models/{repo}/revision/{rev}`, with the Hub's CORS and error headers.
- CDN: `/xet/{sha256}?Expires=..&Signature=..`; preflights fail there (403).
- Any request with a Referer gets a 404 without CORS headers, as on the Hub.
- `/__requests[?reset=1]`: the request log (and clear it). `/__config?...` sets
  test switches and answers them all (with each repo's main and two commits):
  `rate_limit=N&retry_after=S`: the next N Hub requests get a 429.
  `auth=OWNER/NAME&auth_status=401|403`, `auth_off=OWNER/NAME`: that repo needs
  a login (401 RepoNotFound) or is gated (403 GatedRepo).
  `move_main=OWNER/NAME&after=N`: after N more resolves of that repo, main
  moves to a second commit whose config.json has `"_emulator_commit": 2`.
  `tamper=SUB`, `tamper_off=SUB`: bodies of files whose `owner/name/path`
  contains SUB have their middle byte flipped (resolve-cache and CDN).
  `cut=SUB&cut_times=N`: the next N such bodies stop halfway, then the
  connection drops. `slow=OWNER/NAME&slow_ms=MS`: that repo's answers wait MS
  first. `reset=1`: no switches, every main on its first commit.
  Both servers answer these two paths, sharing one state.

Prints `hub-emulator: hub=http://localhost:P cdn=http://127.0.0.2:Q` once both
listen. HUB_EMULATOR_VERBOSE=1 logs requests to stderr. Standard library only.
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 1 << 20
LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".onnx", ".pt", ".h5", ".msgpack")
LFS_MIN_SIZE = 10 << 20
HEX64 = re.compile(r"[0-9a-f]{64}")
EXPOSE = ("X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,"
          "Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash,Retry-After")
TYPES = {".json": "application/json", ".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8"}


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class Blob:
    """One file's content: on disk (`disk`) or in memory (`data`)."""

    def __init__(self, disk=None, data=None):
        self.disk, self.data = disk, data
        self.size = os.path.getsize(disk) if data is None else len(data)
        sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % self.size)
        for block in self.chunks(0, self.size):  # 1 MiB blocks: files can be hundreds of MB
            sha256.update(block)
            sha1.update(block)
        self.sha256, self.git_sha1 = sha256.hexdigest(), sha1.hexdigest()

    def pointer(self):
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n").encode()

    def chunks(self, start, length):
        if self.data is not None:  # small: an edited config.json
            yield self.data[start:start + length]
            return
        with open(self.disk, "rb") as f:
            f.seek(start)
            while length > 0:
                block = f.read(min(CHUNK, length))
                if not block:
                    return
                length -= len(block)
                yield block


def is_lfs(path, size):
    return path.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE


def commit_id(repo, files):
    lines = "".join(sorted(f"{p} {b.sha256}\n" for p, b in files.items()))
    return hashlib.sha1((repo + "\n" + lines).encode()).hexdigest()


class Repo:
    def __init__(self, name, root):
        self.name = name
        files = {}
        for dirpath, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for n in sorted(names):
                full = os.path.join(dirpath, n)
                files[os.path.relpath(full, root).replace(os.sep, "/")] = Blob(disk=full)
        self.first = commit_id(name, files)
        self.commits = {self.first: files}        # commit id -> {path: Blob}; old commits stay servable
        self.modified = {self.first: now_iso()}
        self.main = self.first
        # The second commit (for move_main) is known from the start but only exists once main moves to it.
        self.second = None
        if "config.json" in files:
            with open(files["config.json"].disk, "rb") as f:
                config = json.loads(f.read())
            config["_emulator_commit"] = 2
            self.second_files = dict(files, **{"config.json": Blob(data=json.dumps(config, indent=2).encode())})
            self.second = commit_id(name, self.second_files)

    def move_main(self):
        self.commits.setdefault(self.second, self.second_files)
        self.modified.setdefault(self.second, now_iso())
        self.main = self.second


class State:
    def __init__(self, repos):
        self.lock = threading.Lock()
        self.repos = repos
        self.secret = secrets.token_bytes(32)  # signs CDN URLs; a new one per process
        self.cdn_port = 0
        self.blobs, self.blob_paths = {}, {}   # sha256 -> Blob / {"owner/name/path"}: what the CDN can serve
        for repo in repos.values():
            for files in [*repo.commits.values()] + ([repo.second_files] if repo.second else []):
                for path, blob in files.items():
                    self.blobs.setdefault(blob.sha256, blob)
                    self.blob_paths.setdefault(blob.sha256, set()).add(f"{repo.name}/{path}")
        self.log = []
        self.reset()

    def reset(self):
        self.rate_limit, self.retry_after = 0, 1
        self.auth = {}       # repo -> 401 | 403
        self.moves = {}      # repo -> resolve requests left before main moves
        self.tamper = set()  # substrings of "owner/name/path"
        self.cut = {}        # substring -> bodies left to cut
        self.slow = {}       # repo -> ms each of its answers waits
        for repo in self.repos.values():
            repo.main = repo.first

    def sign(self, sha, expires):
        return hmac.new(self.secret, f"{sha}|{expires}".encode(), hashlib.sha256).hexdigest()

    def switches(self):
        return {"rate_limit": self.rate_limit, "retry_after": self.retry_after, "auth": self.auth,
                "move_main": self.moves, "tamper": sorted(self.tamper), "cut": self.cut, "slow": self.slow,
                "repos": {n: {"main": r.main, "commits": [r.first, r.second]} for n, r in self.repos.items()}}


class Handler(BaseHTTPRequestHandler):
    server_version = "hub-emulator"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the log is at /__requests
        if os.environ.get("HUB_EMULATOR_VERBOSE"):
            sys.stderr.write(f"hub-emulator[{self.server.kind}]: " + fmt % args + "\n")

    @property
    def st(self) -> State:
        return self.server.state

    @property
    def hub(self):
        return self.server.kind == "hub"

    def reply(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=None, cors=True, log=True):
        """Send a whole small answer (headers and body)."""
        data = body.encode() if isinstance(body, str) else body
        base = {} if status == 204 else {"Content-Type": ctype, "Content-Length": str(len(data))}
        self.start(status, dict(base, **(headers or {})), cors, log)
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        self.route()

    do_HEAD = do_OPTIONS = do_GET

    def start(self, status, headers, cors=True, log=True):
        if log:
            with self.st.lock:
                self.st.log.append({"server": self.server.kind, "method": self.command, "path": self.path,
                                    "status": status, "range": self.headers.get("Range"),
                                    "origin": self.headers.get("Origin"), "referer": self.headers.get("Referer")})
        self.send_response(status)
        if cors and self.hub:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Vary", "Origin")
            self.send_header("Access-Control-Expose-Headers", EXPOSE)
        elif cors:
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Expose-Headers", "*")
        if self.hub:
            self.send_header("X-Request-Id", "Root=1-" + secrets.token_hex(12))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def error(self, status, code, message):
        """A Hub error: JSON body plus X-Error-Code / X-Error-Message."""
        extra = dict({"X-Error-Message": message}, **({"X-Error-Code": code} if code else {}))
        self.reply(status, json.dumps({"error": message}), "application/json", extra)

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/__requests", "/__config"):  # test switches: exempt from everything below
            q = urllib.parse.parse_qs(url.query)
            with self.st.lock:
                if url.path == "/__requests":
                    body = json.dumps({"count": len(self.st.log), "requests": self.st.log})
                    if "reset" in q:
                        self.st.log = []
                else:
                    try:
                        body = json.dumps(self.config(q))
                    except ValueError as e:
                        body = json.dumps({"error": f"bad number: {e}"})
            return self.reply(400 if body.startswith('{"error"') else 200, body, "application/json",
                              {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}, cors=False, log=False)
        if self.headers.get("Referer"):  # the real Hub refuses some referers, CORS-less: pages must send none
            return self.reply(404, "Not Found", cors=False)
        segs = [urllib.parse.unquote(s) for s in url.path.split("/")[1:]]
        if not self.hub:
            return self.cdn(segs, urllib.parse.parse_qs(url.query))
        if self.command == "OPTIONS":
            return self.reply(204, headers={"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                            "Access-Control-Allow-Headers": self.headers.get("Access-Control-Request-Headers") or "*",
                                            "Access-Control-Max-Age": "86400"})
        if segs[:3] == ["api", "resolve-cache", "models"] and len(segs) >= 7:
            kind, repo, rev, path = "cache", "/".join(segs[3:5]), segs[5], "/".join(segs[6:])
        elif segs[:2] == ["api", "models"] and len(segs) >= 6 and segs[4] in ("tree", "revision"):
            kind, repo, rev, path = segs[4], "/".join(segs[2:4]), segs[5], "/".join(segs[6:])
        elif len(segs) >= 5 and segs[2] in ("resolve", "raw"):
            kind, repo, rev, path = segs[2], "/".join(segs[:2]), segs[3], "/".join(segs[4:])
        else:
            return self.error(404, None, "Sorry, we can't find the page you are looking for.")
        with self.st.lock:
            limited, auth, slow_ms = self.st.rate_limit > 0, self.st.auth.get(repo), self.st.slow.get(repo, 0)
            self.st.rate_limit -= limited
        time.sleep(slow_ms / 1000)
        if limited:
            return self.reply(429, "We had to rate limit you. Please retry later or log in.",
                              headers={"Retry-After": str(self.st.retry_after), "X-Error-Message": "Rate limited"})
        if auth == 403:
            return self.error(403, "GatedRepo", f"Access to model {repo} is restricted. You must have access to it "
                              "and be authenticated to access it. Please log in.")
        if auth:
            return self.error(401, "RepoNotFound", "Invalid username or password.")
        if repo not in self.st.repos:
            return self.error(404, "RepoNotFound", "Repository not found")
        r = self.st.repos[repo]
        with self.st.lock:
            commit = r.main if rev == "main" else rev if rev in r.commits else None
            if kind == "resolve" and repo in self.st.moves:  # the Nth resolve from now still sees the old main
                self.st.moves[repo] -= 1
                if self.st.moves[repo] <= 0:
                    del self.st.moves[repo]
                    r.move_main()
        if commit is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = r.commits[commit]
        if kind == "tree":
            return self.tree(r, commit, files, path.strip("/"))
        if kind == "revision":
            return self.reply(200, json.dumps({
                "_id": hashlib.sha1(repo.encode()).hexdigest()[:24], "id": repo, "sha": commit,
                "lastModified": r.modified[commit], "siblings": [{"rfilename": p} for p in sorted(files)]}),
                "application/json")
        blob = files.get(path)
        if blob is None:
            return self.error(404, "EntryNotFound", "Entry not found")
        lfs = is_lfs(path, blob.size)
        if kind == "resolve" and lfs:
            expires = int(time.time()) + 3600
            location = (f"http://127.0.0.2:{self.st.cdn_port}/xet/{blob.sha256}"
                        f"?Expires={expires}&Signature={self.st.sign(blob.sha256, expires)}")
            return self.reply(302, headers={"Location": location, "X-Repo-Commit": commit, "X-Linked-Size": str(blob.size),
                                            "X-Linked-ETag": f'"{blob.sha256}"', "ETag": f'"{blob.sha256}"'})
        if kind == "resolve":  # relative, as the Hub sends it: the browser resolves it against the Hub origin
            location = urllib.parse.quote(f"/api/resolve-cache/models/{repo}/{commit}/{path}")
            return self.reply(307, headers={"Location": location, "X-Repo-Commit": commit, "ETag": f'"{blob.git_sha1}"'})
        if kind == "raw" and lfs:
            pointer = blob.pointer()
            return self.reply(200, pointer, headers={"X-Repo-Commit": commit, "ETag": f'"{git_sha1(pointer)}"'})
        ctype = TYPES.get(os.path.splitext(path)[1], "application/octet-stream")
        self.send_blob(blob, {f"{repo}/{path}"}, ctype, {"ETag": f'"{blob.git_sha1}"', "X-Repo-Commit": commit,
                                                         "Cache-Control": "private, max-age=10"})

    def tree(self, r, commit, files, dir):
        prefix = dir + "/" if dir else ""
        items, dirs = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            child = path[len(prefix):]
            if "/" in child:  # a deeper file: list the directory it is in, once
                sub = prefix + child.split("/")[0]
                if sub not in dirs:
                    dirs.add(sub)
                    items.append({"type": "directory", "oid": hashlib.sha1(f"{commit}/{sub}".encode()).hexdigest(),
                                  "size": 0, "path": sub})
                continue
            b = files[path]
            if is_lfs(path, b.size):  # as on the Hub, a LFS file's git oid is its pointer's
                pointer = b.pointer()
                items.append({"type": "file", "oid": git_sha1(pointer), "size": b.size, "path": path,
                              "lfs": {"oid": b.sha256, "size": b.size, "pointerSize": len(pointer)}})
            else:
                items.append({"type": "file", "oid": b.git_sha1, "size": b.size, "path": path})
        if dir and not items:
            return self.error(404, "EntryNotFound", f"{dir} does not exist on \"{commit}\"")
        self.reply(200, json.dumps(items), "application/json")

    def cdn(self, segs, q):
        if self.command == "OPTIONS":  # the real bridge fails preflights: only simple requests work
            return self.reply(403, "Forbidden", cors=False)
        if len(segs) != 2 or segs[0] != "xet" or not HEX64.fullmatch(segs[1]):
            return self.reply(404, "Not Found")
        sha, expires, sig = segs[1], q.get("Expires", [""])[0], q.get("Signature", [""])[0]
        good = expires.isdigit() and int(expires) > time.time() and hmac.compare_digest(sig, self.st.sign(sha, expires))
        if not good:
            return self.reply(403, '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                                   "<Message>Access Denied</Message></Error>", "application/xml")
        blob = self.st.blobs.get(sha)
        if blob is None:
            return self.reply(404, "Not Found")
        # The ETag is a Xet hash: 64 hex, yet not the sha256 (a client must not take it for one).
        xet = hashlib.sha256(b"xet:" + bytes.fromhex(sha)).hexdigest()
        self.send_blob(blob, self.st.blob_paths[sha], "application/octet-stream",
                       {"ETag": f'"{xet}"', "Cache-Control": "public, max-age=604800"})

    def send_blob(self, blob, paths, ctype, headers):
        """A file's bytes with single-range support, tampered with or cut as the switches say."""
        size, start, end, status = blob.size, 0, blob.size - 1, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            try:
                if a:
                    start, end = int(a), min(int(b) if b else size - 1, size - 1)
                else:
                    start = max(0, size - int(b))
                if start > end or start >= size:
                    raise ValueError
                status = 206
            except ValueError:
                return self.reply(416, "Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"})
        length = end - start + 1 if size else 0
        head = self.command == "HEAD"
        with self.st.lock:
            tampered = any(sub in p for sub in self.st.tamper for p in paths)
            cut = next((sub for sub, left in self.st.cut.items() if left > 0 and any(sub in p for p in paths)), None)
            if cut is not None and not head and length:
                self.st.cut[cut] -= 1
            else:
                cut = None
        headers = dict({"Content-Type": ctype, "Content-Length": str(length), "Accept-Ranges": "bytes"}, **headers)
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self.start(status, headers)
        if head or not length:
            return
        flip = size // 2 if tampered else -1  # one byte in the middle, flipped wherever the range covers it
        left, at = (length // 2 if cut else length), start
        try:
            for block in blob.chunks(start, left):
                if at <= flip < at + len(block):
                    block = bytearray(block)
                    block[flip - at] ^= 0xFF
                self.wfile.write(block)
                at += len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if cut:  # headers promised more: drop the connection halfway, as a broken download would
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def config(self, q):
        """Set test switches (called under the lock); answers them all, or {"error": ...}."""
        st, one = self.st, (lambda k, d=None: q.get(k, [d])[0])
        if "reset" in q:
            st.reset()
        for key in ("auth", "auth_off", "move_main"):
            if key in q and one(key) not in st.repos:
                return {"error": f"unknown repo {one(key)!r} for {key}"}
        if "rate_limit" in q:
            st.rate_limit, st.retry_after = int(one("rate_limit")), int(one("retry_after", "1"))
        if "auth" in q:
            st.auth[one("auth")] = 403 if one("auth_status", "401") == "403" else 401
        st.auth.pop(one("auth_off"), None)
        if "move_main" in q:
            repo = st.repos[one("move_main")]
            if repo.second is None:
                return {"error": f"{repo.name} has no config.json to change"}
            st.moves[repo.name] = int(one("after", "1"))
            if st.moves[repo.name] <= 0:
                repo.move_main()
                del st.moves[repo.name]
        st.tamper.update(q.get("tamper", []))
        st.tamper.difference_update(q.get("tamper_off", []))
        if "cut" in q:
            st.cut[one("cut")] = int(one("cut_times", "1"))
        if "slow" in q:
            st.slow[one("slow")] = int(one("slow_ms", "2000"))
        return st.switches()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", action="append", required=True, help="OWNER/NAME=DIR: serve DIR's files as that repo")
    ap.add_argument("--hub-port", type=int, default=0)
    ap.add_argument("--cdn-port", type=int, default=0)
    args = ap.parse_args()
    repos = {}
    for spec in args.repo:
        name, _, root = spec.partition("=")
        if name.count("/") != 1 or not os.path.isdir(root) or name in repos:
            sys.exit(f"hub-emulator: --repo wants OWNER/NAME=DIR (a folder, each repo once), got {spec!r}")
        repos[name] = Repo(name, root)
    state = State(repos)
    servers = []
    for kind, host, port in (("hub", "127.0.0.1", args.hub_port), ("cdn", "127.0.0.2", args.cdn_port)):
        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        server.kind, server.state = kind, state
        servers.append(server)
    state.cdn_port = servers[1].server_address[1]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"hub-emulator: hub=http://localhost:{servers[0].server_address[1]} cdn=http://127.0.0.2:{state.cdn_port}",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:  # Ctrl-C: the daemon threads end with the process
        pass


if __name__ == "__main__":
    main()
