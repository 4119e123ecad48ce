// Offline copy of the page: every file of the site, cached under a name made from their
// contents, so a new deployment installs a new cache and removes the old one. Generated
// into dist/ by `cargo xtask build-page` (crates/xtask/src/dist.rs fills FILES and VERSION);
// `trunk build` alone leaves this template, which caches nothing.
const VERSION = "__VERSION__";
const FILES = __FILES__;
const CACHE = "fashion-" + VERSION;

self.addEventListener("install", (event) => {
  // All or nothing: a failed download leaves the previous cache (and version) in charge.
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("fashion-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Cache first for the site's own files; anything else (nothing, today) goes to the network
// untouched. The page address with a query (?backend=cpu) is the same page.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  const isPage = request.mode === "navigate";
  // `caches.match` with a cache name (not `caches.open`) never re-creates a cache the page
  // removed (web/loader.js drops a damaged offline copy).
  event.respondWith(caches.match(isPage ? "./" : request, { cacheName: CACHE, ignoreSearch: isPage }).then((hit) => hit || fetch(request)));
});
