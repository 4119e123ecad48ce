// Starts the app (what Trunk would otherwise inline into index.html; an inline script would
// need 'unsafe-inline' in the Content-Security-Policy).
const tag = document.querySelector("script[data-wasm-js]");
const boot = document.getElementById("boot");
try {
  const bindings = await import(tag.dataset.wasmJs);
  await bindings.default({ module_or_path: tag.dataset.wasm });
  // Test and benchmark hooks (see crates/web/src/hooks.rs), as Trunk's own loader does.
  window.wasmBindings = bindings;
  dispatchEvent(new CustomEvent("TrunkApplicationStarted"));
} catch (error) {
  if (boot) {
    boot.textContent =
      "The app could not start: " + error +
      ". It needs a browser with WebAssembly (a current Chrome, Edge, Firefox or Safari).";
    boot.setAttribute("data-testid", "error");
    boot.setAttribute("role", "alert");
  }
}
