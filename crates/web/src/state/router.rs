//! Which backend answers. The page's own module runs the models on the CPU (large batches on
//! two cores: [`second_core`]); once
//! the WebGPU module has started, classification, "Why?" and fine-tuning go there. This is the
//! one place that choice is made, and the one place a failure on WebGPU is handled:
//!
//! - the device is lost (or the module stopped): the page moves to the CPU for good, says so,
//!   and the call is answered on the CPU;
//! - the call failed otherwise: WebGPU stays in charge; a classification or heatmap is
//!   answered on the CPU, a fine-tuning run is reported as failed (running it again is the
//!   user's choice, and it would take minutes on the CPU).

use std::rc::Rc;

use fashion_engine::{
    BackendKind, Engine, Scores,
    finetune::{self, Outcome, Sets},
};
use fashion_model::{LabelledImages, finetune::FineTuneConfig};
use js_sys::{Function, Promise};
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::{
    finetune_worker,
    gpu::{self, Gpu, GpuError},
    second_core,
};

/// What the backend badge shows.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendStatus {
    /// `None` while starting.
    pub kind: Option<BackendKind>,
    pub detail: String,
    /// While the WebGPU module loads and starts (the CPU answers meanwhile).
    pub pending: bool,
}

/// After a failure on WebGPU that left the device working.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnGpuFailure {
    AnswerOnCpu,
    Report,
}

/// Start-up's end, which calls that need the models wait for (an upload before the page is
/// ready): a promise resolved once the models loaded or failed to.
#[derive(Clone)]
struct Started {
    promise: Promise,
    resolve: Function,
}

impl Started {
    fn new() -> Self {
        let mut resolve = None;
        let promise = Promise::new(&mut |ok, _| resolve = Some(ok));
        Self { promise, resolve: resolve.expect("a promise calls its executor at once") }
    }
}

#[derive(Clone, Copy)]
pub struct Router {
    pub status: RwSignal<BackendStatus>,
    /// Where the router tells the user that the GPU stopped.
    notice: RwSignal<Option<String>>,
    /// The page's models on the CPU, once loaded: they calibrate every answer, and classify
    /// where WebGPU does not run.
    cpu: StoredValue<Option<Rc<Engine>>, LocalStorage>,
    /// The WebGPU module, while the page runs there.
    gpu: StoredValue<Option<Rc<Gpu>>, LocalStorage>,
    started: StoredValue<Started, LocalStorage>,
}

impl Router {
    pub fn new(notice: RwSignal<Option<String>>) -> Self {
        Self {
            status: RwSignal::new(BackendStatus { kind: None, detail: "starting…".into(), pending: false }),
            notice,
            cpu: StoredValue::new_local(None),
            gpu: StoredValue::new_local(None),
            started: StoredValue::new_local(Started::new()),
        }
    }

    /// The page's models, once loaded.
    pub fn models(&self) -> Option<Rc<Engine>> {
        self.cpu.get_value()
    }

    /// The WebGPU module, while the page runs there.
    pub fn gpu(&self) -> Option<Rc<Gpu>> {
        self.gpu.get_value()
    }

    /// The page's models, waiting for start-up to finish if needed.
    pub async fn engine(&self) -> Result<Rc<Engine>, String> {
        if let Some(engine) = self.models() {
            return Ok(engine);
        }
        let _ = JsFuture::from(self.started.with_value(|s| s.promise.clone())).await;
        self.models().ok_or_else(|| "the model is not loaded".into())
    }

    /// Start-up ended, with or without models: whatever waits for them goes on.
    pub fn start_ended(&self) {
        self.started.with_value(|s| drop(s.resolve.call0(&JsValue::NULL)));
    }

    /// Puts `engine`'s models in charge and gives them to the WebGPU module if it runs.
    pub async fn install(&self, engine: Engine) -> Rc<Engine> {
        let engine = Rc::new(engine);
        self.cpu.set_value(Some(engine.clone()));
        if let Some(gpu) = self.gpu() {
            if let Err(e) = gpu.set_models(&engine.cnn.bytes, engine.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
                self.use_cpu(format!("WebGPU could not take the new model ({e}); switched to the CPU"));
            }
        }
        engine
    }

    /// Everything moves to the CPU module for good, and the badge says why.
    pub fn use_cpu(&self, why: String) {
        self.gpu.set_value(None);
        self.status.set(BackendStatus { kind: Some(BackendKind::Cpu), detail: why, pending: false });
    }

    /// Loads and starts the WebGPU module with the models in use; where it cannot start, the
    /// CPU goes on and the badge says why.
    pub async fn start_gpu(&self) {
        let Some(models) = self.models() else { return };
        // Asked of the browser first: without an adapter the module is not worth its download.
        if let Err(why) = fashion_engine::js::probe_webgpu().await {
            return self.use_cpu(why);
        }
        match gpu::start(&models.cnn.bytes, models.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
            Ok(gpu) => {
                // The models may have changed while WebGPU started (loaded weights, a reset).
                let now = self.models().unwrap_or(models.clone());
                if !Rc::ptr_eq(&now, &models) {
                    if let Err(e) = gpu.set_models(&now.cnn.bytes, now.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
                        return self.use_cpu(format!("WebGPU could not take the model ({e})"));
                    }
                }
                self.status.set(BackendStatus { kind: Some(BackendKind::WebGpu), detail: gpu.adapter.clone(), pending: false });
                self.gpu.set_value(Some(gpu));
            }
            Err(why) => self.use_cpu(why),
        }
    }

    /// Runs `on_gpu` on WebGPU when it is in use, else `on_cpu` on the page's models; see the
    /// module's documentation for what a failure on WebGPU leads to.
    async fn route<T>(
        &self,
        what: &str,
        on_failure: OnGpuFailure,
        on_gpu: impl AsyncFnOnce(&Gpu, &Engine) -> Result<T, GpuError>,
        on_cpu: impl AsyncFnOnce(&Engine) -> Result<T, String>,
    ) -> Result<T, String> {
        let engine = self.engine().await?;
        if let Some(gpu) = self.gpu() {
            match on_gpu(&gpu, &engine).await {
                Ok(answer) => return Ok(answer),
                Err(GpuError::Lost(why)) => {
                    self.use_cpu(format!("WebGPU stopped working ({why}); switched to the CPU"));
                    self.notice.set(Some("The GPU stopped responding; the page now runs on the CPU.".into()));
                }
                Err(GpuError::Failed(why)) if on_failure == OnGpuFailure::Report => return Err(why),
                Err(GpuError::Failed(why)) => {
                    web_sys::console::warn_1(&format!("WebGPU could not {what} ({why}); answered on the CPU.").into());
                }
            }
        }
        on_cpu(&engine).await
    }

    /// Class probabilities and verdicts for `pixels` (n × 784). The page's copy of the models
    /// calibrates the WebGPU module's logits, as it does the CPU's.
    pub async fn classify(&self, pixels: &[f32]) -> Result<Vec<Scores>, String> {
        self.route(
            "classify",
            OnGpuFailure::AnswerOnCpu,
            async |gpu, engine| gpu.logits(pixels).await.map(|(cnn, baseline)| engine.scores(&cnn, baseline.as_deref())),
            async |engine| second_core::classify(engine, pixels).await.map_err(|e| e.to_string()),
        )
        .await
    }

    /// The occlusion heatmap ("Why?") of the CNN's answer for one 28×28 input.
    pub async fn explain(&self, pixels: &[f32]) -> Result<Vec<f32>, String> {
        self.route(
            "explain",
            OnGpuFailure::AnswerOnCpu,
            async |gpu, _| gpu.explain(pixels).await,
            async |engine| second_core::explain(engine, pixels).await.map_err(|e| e.to_string()),
        )
        .await
    }

    /// A fine-tuning run of the CNN in use. On the CPU it runs in a worker, so that the page
    /// stays responsive; on the page itself only where the worker cannot start.
    pub async fn fine_tune(
        &self,
        user: &LabelledImages,
        classes: &[String],
        sets: &Sets,
        config: &FineTuneConfig,
        on_step: impl Fn(usize, f32) + Clone + 'static,
        cancelled: impl Fn() -> bool + Clone + 'static,
    ) -> Result<Outcome, String> {
        let (gpu_step, gpu_cancelled) = (on_step.clone(), cancelled.clone());
        self.route(
            "fine-tune",
            OnGpuFailure::Report,
            async |gpu, _| gpu.fine_tune(user, classes, sets, config, gpu_step, gpu_cancelled).await,
            async |engine| match finetune_worker::fine_tune(
                &engine.cnn.bytes,
                user,
                classes,
                sets,
                config,
                on_step.clone(),
                cancelled.clone(),
            )
            .await
            {
                Err(finetune_worker::Failure::Unavailable(why)) => {
                    web_sys::console::warn_1(&format!("The fine-tuning worker could not start ({why}); training on the page.").into());
                    finetune::run(engine, user.clone(), classes, sets, config.clone(), on_step, cancelled).await.map_err(|e| e.to_string())
                }
                Err(finetune_worker::Failure::Failed(why)) => Err(why),
                Ok(outcome) => Ok(outcome),
            },
        )
        .await
    }
}
