// Starts the app (what Trunk would otherwise inline into index.html; an inline script would
// need 'unsafe-inline' in the Content-Security-Policy).
const tag = document.querySelector("script[data-wasm-js]");
const boot = document.getElementById("boot");
// Set while reloading after removing a damaged offline copy, so that it happens only once.
const REPAIRED = "fashion-offline-copy-removed";
// The smallest module that uses a 128-bit SIMD instruction (i8x16.splat, i8x16.popcnt). The
// app is compiled with wasm SIMD (its CPU kernels need it); without this check a browser
// lacking it would only report a compile error.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
try {
  if (typeof WebAssembly !== "object") {
    throw new Error("this browser has no WebAssembly");
  }
  if (!WebAssembly.validate(SIMD_PROBE)) {
    throw new Error("this browser has WebAssembly but not its SIMD extension (Chrome 91, Firefox 89, Safari 16.4 and later have it)");
  }
  const bindings = await import(tag.dataset.wasmJs);
  await bindings.default({ module_or_path: tag.dataset.wasm });
  // Test and benchmark hooks (see crates/web/src/hooks.rs), as Trunk's own loader does.
  window.wasmBindings = bindings;
  window.fashionLoadGpu = loadGpu;
  dispatchEvent(new CustomEvent("TrunkApplicationStarted"));
  sessionStorage.removeItem(REPAIRED);
  keepOfflineCopy();
} catch (error) {
  let advice = "It needs a browser with WebAssembly and WebAssembly SIMD: a current Chrome, Edge, Firefox or Safari.";
  if (await dropOfflineCopy()) {
    // This page came from the offline copy and the copy is damaged (a disk error, storage
    // cleared half-way): it is gone now. With the site reachable, load it afresh, once.
    if (!sessionStorage.getItem(REPAIRED) && (await siteReachable())) {
      sessionStorage.setItem(REPAIRED, "1");
      location.reload();
    }
    sessionStorage.removeItem(REPAIRED);
    advice =
      "The offline copy of this page was damaged, and has been removed. Reload the page when you are online " +
      "to download it again. Your fine-tuned model, if you made one, is kept.";
  }
  if (boot) {
    boot.textContent = "The app could not start: " + error + ". " + advice;
    boot.setAttribute("data-testid", "error");
    boot.setAttribute("role", "alert");
  }
}

// The engine module (crates/engine-module), which the app asks for once it can answer on
// the CPU, to run on WebGPU: a classic script (Trunk builds it like a worker, `--target no-modules`)
// that declares the global `wasm_bindgen`. Resolves to its exports, once started.
let gpuModule = null;
function loadGpu() {
  gpuModule ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "engine.js";
    script.onload = () => resolve();
    script.onerror = () => reject(new Error("engine.js could not be loaded"));
    document.head.append(script);
  }).then(async () => {
    // Declared by engine.js.
    const gpu = wasm_bindgen;
    await gpu({ module_or_path: "engine_bg.wasm" });
    return gpu;
  });
  return gpuModule;
}

// Removes the offline copy and its service worker if this page was served by them; true if
// it was. The fine-tuned model lives in IndexedDB and is not touched.
async function dropOfflineCopy() {
  if (!("serviceWorker" in navigator) || !navigator.serviceWorker.controller) return false;
  try {
    const keys = await caches.keys();
    await Promise.all(keys.filter((k) => k.startsWith("fashion-")).map((k) => caches.delete(k)));
    const registrations = await navigator.serviceWorker.getRegistrations();
    await Promise.all(registrations.map((r) => r.unregister()));
  } catch (error) {
    console.warn("Could not remove the offline copy:", error);
  }
  return true;
}

// Whether the site answers (past any cache): a reload then gets a working page, not the
// browser's "no connection" page.
async function siteReachable() {
  try {
    return (await fetch("./", { cache: "no-store" })).ok;
  } catch {
    return false;
  }
}

// Once the page can answer, store an offline copy (web/sw.js): not earlier, so that it never
// competes with the first answer for bandwidth. `data-offline` on <html> says how it went
// ("ready" once every file is cached), for the tests and for anyone curious.
function keepOfflineCopy() {
  if (!("serviceWorker" in navigator)) return;
  const root = document.documentElement;
  const register = () =>
    navigator.serviceWorker
      .register("sw.js")
      .then(() => navigator.serviceWorker.ready)
      .then(() => { root.dataset.offline = "ready"; })
      .catch((error) => {
        root.dataset.offline = "unavailable";
        console.warn("No offline copy of the page:", error);
      });
  if (performance.getEntriesByName("fashion-ready").length > 0) {
    register();
    return;
  }
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => e.name === "fashion-ready")) {
      observer.disconnect();
      register();
    }
  });
  observer.observe({ type: "mark", buffered: true });
}
