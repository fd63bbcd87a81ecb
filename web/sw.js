// The offline app shell: this service worker keeps the page's own files
// (html, js, wasm, css) so that after one visit the page opens, and with the
// model files in the worker's cache (three-answers-models-v1) answers, with
// the network off. Model files are not handled here (the engine's worker
// caches them itself, by URL).
//
// Updates: Trunk hashes the page's js/wasm/css names but not the worker's
// (worker.js, worker_bg.wasm, worker_loader.js, cache_sink.js). BUILD_ID below is a hash of
// every built file, written in by scripts/sw-build-id.py (a Trunk post_build
// hook), so each deploy is a new service worker with its own cache
// ("three-answers-shell-<id>"), filled completely at install; older caches are
// deleted when it activates. The html and the un-hashed worker files are
// fetched network first (the cache is only the offline fallback), so an open
// page never mixes a new page with an old worker or the reverse.
const BUILD_ID = '__BUILD_ID__';
const ASSETS = __ASSETS__;
const SHELL = `three-answers-shell-${BUILD_ID}`;
const SCOPE = new URL('./', self.location).href;
const UNHASHED = new Set(['', 'index.html', 'worker.js', 'worker_bg.wasm', 'worker_loader.js', 'cache_sink.js',
  'worker_mt.js', 'worker_mt_bg.wasm', 'worker_mt_loader.js', 'worker_mt_thread.js']);

// Cross-origin isolation, which the threaded engine needs (shared memory):
// static hosts such as GitHub Pages send no COOP/COEP headers, so this
// worker adds them to everything it serves. The page reloads once to get
// them (index.html) and says which engine runs. `?isolation=off` leaves a
// page unisolated. Hub downloads are CORS requests, which require-corp allows.
function isolate(res, navigation, url) {
  if (!res || res.type === 'opaqueredirect' || res.status === 0) return res;
  if (navigation && /[?&]isolation=off(&|$)/.test(url)) return res;
  const headers = new Headers(res.headers);
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('X-Three-Answers-Shell', SHELL); // which deploy's service worker served it
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(SHELL)
      .then((cache) => cache.addAll(ASSETS.map((a) => new Request(SCOPE + a, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('three-answers-shell-') && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || !req.url.startsWith(SCOPE)) return;
  const rel = new URL(req.url).pathname.slice(new URL(SCOPE).pathname.length);
  const navigation = req.mode === 'navigate';
  if (!navigation && !ASSETS.includes(rel)) return; // models, mirrors, anything else: the network
  const key = navigation ? SCOPE + 'index.html' : SCOPE + rel;
  if (navigation || UNHASHED.has(rel)) {
    // Network first; the cached copy when offline.
    event.respondWith(
      fetch(req).then((res) => {
        if (res.ok) {
          const copy = res.clone();
          // Only into a cache that still exists: caches.open would bring back
          // one a newer deploy deleted (this version may run a while after it).
          caches.has(SHELL).then((has) => has && caches.open(SHELL).then((c) => c.put(key, copy))).catch(() => {});
        }
        return res;
      }).catch(() => cached(key).then((hit) => hit || Response.error()))
        .then((res) => isolate(res, navigation, req.url)),
    );
  } else {
    // Hashed names never change: cache first.
    event.respondWith(cached(key).then((hit) => hit || fetch(req)).then((res) => isolate(res, false, req.url)));
  }
});

// This deploy's copy, else any cache's (a newer deploy's: it deleted this
// one's cache on activating); never creates a cache.
function cached(key) {
  return caches.match(key, { cacheName: SHELL }).then((hit) => hit || caches.match(key));
}
