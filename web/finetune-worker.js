// CPU fine-tuning off the page's main thread (crates/web/src/finetune_worker.rs starts one worker per
// run and ends it afterwards). It runs the engine module (engine.js / engine_bg.wasm, the same
// fine-tuning code the page would run) on burn's CPU backend.
//
// Messages: the page posts `{ cnn, args }` (`args`: the module's `fineTune` arguments but
// its two callbacks), then `{ cancel: true }` if the user cancels; the worker answers
// `{ step, loss }` after every step and ends with `{ done: null | [weights, report] }`,
// `{ error }` (the run failed), or `{ unavailable }` (the module could not start here).
importScripts("engine.js");

// Declared by engine.js.
const engine = wasm_bindgen;
const started = engine({ module_or_path: "engine_bg.wasm" });
let cancelled = false;

const message = (error) => String(error?.message ?? error);

onmessage = async ({ data }) => {
  if (data.cancel) {
    cancelled = true;
    return;
  }
  try {
    await started;
    engine.startCpu(data.cnn, null);
  } catch (error) {
    postMessage({ unavailable: message(error) });
    return;
  }
  try {
    const onStep = (step, loss) => postMessage({ step, loss });
    // The module yields to this worker's event loop between steps, so a cancel message is
    // seen before the next one.
    const done = await engine.fineTune(...data.args, onStep, () => cancelled);
    postMessage({ done });
  } catch (error) {
    postMessage({ error: message(error) });
  }
};
