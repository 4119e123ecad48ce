//! The app's reactive state, shared through Leptos context, and the browser actions that
//! change it (start-up, classifying uploads, swapping weights, fine-tuning). The gallery's
//! rules are plain data in `fashion-gallery` (`crates/gallery`); components stay thin.

use std::rc::Rc;

use fashion_engine::{
    engine::{self, Backend, BackendKind, Engine, Scores},
    tuning,
};
use fashion_model::{Framing, LabelledImages, TrainingSummary, finetune::FineTuneConfig, framing::Thumbnail};
use js_sys::{Function, Promise};
use leptos::{prelude::*, task::spawn_local};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::{
    browser,
    decoder::{self, ItemRegion},
    gpu::{self, Gpu, GpuError},
    samples, storage, tuner,
};
use fashion_gallery::{self as gallery, CardResult, Classified, MAX_CARDS};

/// What the backend badge shows.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendStatus {
    /// `None` while starting.
    pub kind: Option<BackendKind>,
    pub detail: String,
    /// While the WebGPU module loads and starts (the CPU answers meanwhile).
    pub pending: bool,
}

/// Facts about the loaded models, for the "about" panel.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ModelsInfo {
    pub cnn: Option<ModelInfo>,
    pub baseline: Option<ModelInfo>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub params: usize,
    pub summary: TrainingSummary,
}

/// One uploaded file in the gallery.
#[derive(Clone)]
pub struct Card {
    pub id: u64,
    pub name: String,
    /// `blob:` URL of the user's file, for the thumbnail.
    pub photo_url: Option<String>,
    pub result: RwSignal<CardResult>,
    /// The class the user says this photo shows, which puts it in the fine-tuning set.
    pub teach: RwSignal<Option<u8>>,
    /// Where the 28×28 view lies on the photo (fractions; see `Preprocessed::frame`).
    pub frame: RwSignal<Option<[f32; 4]>>,
    /// The region taken as the item, outlined on the photo.
    pub item: RwSignal<Option<ItemRegion>>,
    /// The occlusion heatmap of the current answer (28×28, 0..=1), once asked for ("Why?").
    pub heat: RwSignal<Option<Vec<f32>>>,
    /// The file as the user gave it: every re-framing starts again from it.
    pub file: web_sys::File,
    /// The user's turns, mirror and crop of the photo.
    pub framing: RwSignal<Framing>,
    /// Once re-framed: thumbnails of the view and of the view without its crop.
    pub thumbnails: RwSignal<Option<(Thumbnail, Thumbnail)>>,
    /// Why the file cannot be read at all (re-framing cannot help then).
    pub unreadable: RwSignal<Option<String>>,
    /// Why the last re-framing was refused; the card's answer is unchanged.
    pub framing_error: RwSignal<Option<String>>,
}

impl Card {
    /// Releases what the card holds once the gallery drops it: its photo's object URL and
    /// its signals (a task still working on it then writes to nothing).
    fn dispose(self) {
        if let Some(url) = &self.photo_url {
            let _ = web_sys::Url::revoke_object_url(url);
        }
        self.result.dispose();
        self.teach.dispose();
        self.frame.dispose();
        self.item.dispose();
        self.heat.dispose();
        self.framing.dispose();
        self.thumbnails.dispose();
        self.unreadable.dispose();
        self.framing_error.dispose();
    }
}

/// Start-up's end, which actions that need the models wait for (an upload before the page is
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

/// Where fine-tuning is.
#[derive(Clone, Debug, PartialEq)]
pub enum Tuning {
    Idle,
    Running { step: usize, steps: usize },
    Done(tuning::Report),
    Cancelled,
    Failed(String),
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub backend: RwSignal<BackendStatus>,
    pub ready: RwSignal<bool>,
    /// Page-level messages (weights could not load, a bad weights file…).
    pub error: RwSignal<Option<String>>,
    pub notice: RwSignal<Option<String>>,
    pub cards: RwSignal<Vec<Card>>,
    pub models: RwSignal<ModelsInfo>,
    pub tuning: RwSignal<Tuning>,
    pub tune_config: RwSignal<FineTuneConfig>,
    /// Loss of every fine-tuning step so far, for the live chart.
    pub losses: RwSignal<Vec<f32>>,
    cancel: RwSignal<bool>,
    next_id: StoredValue<u64>,
    /// The page's models on the CPU, once loaded: they calibrate every answer, and classify
    /// where WebGPU does not run.
    engine: StoredValue<Option<Rc<Engine>>, LocalStorage>,
    /// The WebGPU module, while classification runs there.
    gpu: StoredValue<Option<Rc<Gpu>>, LocalStorage>,
    /// The shipped CNN's file, for "Reset".
    shipped_cnn: StoredValue<Option<Rc<Vec<u8>>>, LocalStorage>,
    started: StoredValue<Started, LocalStorage>,
}

impl AppState {
    pub fn new() -> Self {
        Self {
            backend: RwSignal::new(BackendStatus { kind: None, detail: "starting…".into(), pending: false }),
            ready: RwSignal::new(false),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            cards: RwSignal::new(Vec::new()),
            models: RwSignal::new(ModelsInfo::default()),
            tuning: RwSignal::new(Tuning::Idle),
            tune_config: RwSignal::new(FineTuneConfig::default()),
            losses: RwSignal::new(Vec::new()),
            cancel: RwSignal::new(false),
            next_id: StoredValue::new(0),
            engine: StoredValue::new_local(None),
            gpu: StoredValue::new_local(None),
            shipped_cnn: StoredValue::new_local(None),
            started: StoredValue::new_local(Started::new()),
        }
    }

    /// The page's models, once loaded.
    pub fn current_engine(&self) -> Option<Rc<Engine>> {
        self.engine.get_value()
    }

    /// The WebGPU module, while classification runs there.
    pub fn current_gpu(&self) -> Option<Rc<Gpu>> {
        self.gpu.get_value()
    }

    /// Puts `engine` in charge (start-up, new weights, a fine-tune, a reset), shows its models
    /// and gives them to the WebGPU module if it runs: the one place the models change.
    async fn swap_engine(&self, engine: Engine) -> Rc<Engine> {
        let info = |m: &engine::Model| ModelInfo { name: m.architecture.name().to_string(), params: m.params, summary: m.summary.clone() };
        self.models.set(ModelsInfo { cnn: Some(info(&engine.cnn)), baseline: engine.baseline.as_ref().map(info) });
        let engine = Rc::new(engine);
        self.engine.set_value(Some(engine.clone()));
        if let Some(gpu) = self.current_gpu() {
            if let Err(e) = gpu.set_models(&engine.cnn.bytes, engine.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
                self.use_cpu(format!("WebGPU could not take the new model ({e}); switched to the CPU"));
            }
        }
        engine
    }

    /// Classification moves to the CPU module for good, and the badge says why.
    fn use_cpu(&self, why: String) {
        self.gpu.set_value(None);
        self.backend.set(BackendStatus { kind: Some(BackendKind::Cpu), detail: why, pending: false });
    }

    /// Picks the backend, loads the shipped weights and warms the model up.
    pub fn start(self) {
        spawn_local(async move {
            if let Err(e) = self.try_start().await {
                self.backend.update(|b| {
                    b.detail = "not ready".into();
                    b.pending = false;
                });
                self.error.set(Some(e));
                // Whatever waits for the models learns that they will not come.
                self.started.with_value(|s| drop(s.resolve.call0(&JsValue::NULL)));
            }
        });
    }

    /// Answers on the CPU first, then moves to WebGPU once its module has loaded and started.
    async fn try_start(self) -> Result<(), String> {
        let want_gpu = browser::query_param("backend").as_deref() != Some("cpu");
        self.backend.set(BackendStatus { kind: None, detail: "loading the model…".into(), pending: want_gpu });
        let cnn = browser::fetch_bytes("cnn.fmw")
            .await
            .map_err(|e| format!("The model could not be downloaded: {e}. Reload the page to try again."))?;
        let baseline = match browser::fetch_bytes("baseline.fmw").await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.notice.set(Some(format!("The logistic-regression baseline is unavailable ({e}).")));
                None
            }
        };
        self.shipped_cnn.set_value(Some(Rc::new(cnn.clone())));
        let reason = if want_gpu { "WebGPU is starting…" } else { "chosen in the address (?backend=cpu)" };
        let mut engine = Engine::load(Backend::cpu(reason), cnn, baseline).map_err(|e| format!("The shipped model is unusable: {e}"))?;
        // The user's fine-tuned model, if they made one in an earlier visit.
        match storage::get(storage::FINE_TUNED).await {
            Ok(Some(saved)) => match engine.with_weights(saved) {
                Ok(tuned) => {
                    engine = tuned;
                    self.notice.set(Some("Using your fine-tuned model, restored from this browser. “Reset” returns to the shipped one.".into()));
                }
                Err(e) => self.notice.set(Some(format!(
                    "Your saved fine-tuned model could not be loaded ({e}); using the shipped model. It is still stored: “Reset” deletes it."
                ))),
            },
            Ok(None) => {}
            Err(e) => self.notice.set(Some(format!("Saved models are unavailable: {e}."))),
        }
        engine.warm_up().await.map_err(|e| format!("The model failed to run: {e}"))?;
        self.swap_engine(engine).await;
        self.backend.set(BackendStatus { kind: Some(BackendKind::Cpu), detail: reason.into(), pending: want_gpu });
        self.ready.set(true);
        self.started.with_value(|s| drop(s.resolve.call0(&JsValue::NULL)));
        // For the page benchmark: time from navigation to ready.
        browser::mark("fashion-ready");
        // Only now: the workers' and the WebGPU module's downloads must not delay the first answer.
        decoder::start();
        if want_gpu {
            self.start_gpu().await;
        }
        Ok(())
    }

    /// Loads and starts the WebGPU module with the models in use; where it cannot start, the
    /// CPU goes on and the badge says why.
    async fn start_gpu(self) {
        let Some(models) = self.current_engine() else { return };
        // Asked of the browser first: without an adapter the module is not worth its download.
        if let Err(why) = fashion_engine::js::probe_webgpu().await {
            return self.use_cpu(why);
        }
        match gpu::start(&models.cnn.bytes, models.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
            Ok(gpu) => {
                // The models may have changed while WebGPU started (loaded weights, a reset).
                let now = self.current_engine().unwrap_or(models.clone());
                if !Rc::ptr_eq(&now, &models) {
                    if let Err(e) = gpu.set_models(&now.cnn.bytes, now.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
                        return self.use_cpu(format!("WebGPU could not take the model ({e})"));
                    }
                }
                self.backend.set(BackendStatus { kind: Some(BackendKind::WebGpu), detail: gpu.adapter.clone(), pending: false });
                self.gpu.set_value(Some(gpu));
                browser::mark("fashion-webgpu-ready");
            }
            Err(why) => self.use_cpu(why),
        }
    }

    /// The page's models, waiting for start-up to finish if needed.
    pub async fn engine(&self) -> Result<Rc<Engine>, String> {
        if let Some(engine) = self.current_engine() {
            return Ok(engine);
        }
        let _ = JsFuture::from(self.started.with_value(|s| s.promise.clone())).await;
        self.current_engine().ok_or_else(|| "the model is not loaded".into())
    }

    /// Classifies on WebGPU when it runs, else on the CPU. Where WebGPU fails, the CPU answers:
    /// the user still gets an answer.
    pub async fn classify(&self, pixels: &[f32]) -> Result<Vec<Scores>, String> {
        let engine = self.engine().await?;
        if let Some(gpu) = self.current_gpu() {
            match gpu.logits(pixels).await {
                // The page's copy of the models calibrates, as for the CPU's logits.
                Ok((cnn, baseline)) => return Ok(engine.scores(&cnn, baseline.as_deref())),
                Err(e) => self.gpu_failed(e, "classify"),
            }
        }
        engine.classify(pixels).await.map_err(|e| e.to_string())
    }

    /// After a failed call into the WebGPU module: a lost device (or a stopped module) moves
    /// the page to the CPU for good, and says so; any other failure leaves WebGPU in charge
    /// and only this call is answered on the CPU.
    fn gpu_failed(&self, e: GpuError, what: &str) {
        match e {
            GpuError::Lost(why) => {
                self.use_cpu(format!("WebGPU stopped working ({why}); switched to the CPU"));
                self.notice.set(Some("The GPU stopped responding; the page now runs on the CPU.".into()));
            }
            GpuError::Failed(why) => {
                web_sys::console::warn_1(&format!("WebGPU could not {what} ({why}); answered on the CPU.").into());
            }
        }
    }

    /// Adds files to the gallery (newest first) and classifies them.
    pub fn add_files(self, files: Vec<web_sys::File>) {
        if files.is_empty() {
            return;
        }
        let mut jobs = Vec::with_capacity(files.len());
        for file in files {
            let id = self.next_id.get_value();
            self.next_id.set_value(id + 1);
            let card = Card {
                id,
                name: file.name(),
                photo_url: web_sys::Url::create_object_url_with_blob(&file).ok(),
                result: RwSignal::new(CardResult::Working),
                teach: RwSignal::new(None),
                frame: RwSignal::new(None),
                item: RwSignal::new(None),
                heat: RwSignal::new(None),
                file: file.clone(),
                framing: RwSignal::new(Framing::default()),
                thumbnails: RwSignal::new(None),
                unreadable: RwSignal::new(None),
                framing_error: RwSignal::new(None),
            };
            jobs.push((card, file));
        }
        let mut dropped = Vec::new();
        self.cards.update(|cards| dropped = gallery::add_newest(cards, jobs.iter().map(|(card, _)| card.clone()), MAX_CARDS));
        dropped.into_iter().for_each(Card::dispose);
        spawn_local(async move {
            let mut ready = Vec::new();
            for (card, file) in jobs {
                match decoder::decode(&file, Framing::default()).await {
                    Ok(decoded) => {
                        card.frame.set(Some(decoded.frame));
                        card.item.set(Some(decoded.item));
                        ready.push((card, decoded.pixels, None))
                    }
                    Err(e) => {
                        card.unreadable.set(Some(e.clone()));
                        card.result.set(CardResult::Failed(e));
                    }
                }
                browser::yield_now().await;
            }
            self.classify_cards(ready).await;
        });
    }

    /// Classifies cards; `before` is each card's answer under the previous model, if any.
    async fn classify_cards(&self, cards: Vec<(Card, Vec<f32>, Option<(usize, f32)>)>) {
        if cards.is_empty() {
            return;
        }
        let pixels: Vec<f32> = cards.iter().flat_map(|(_, p, _)| p.iter().copied()).collect();
        match self.classify(&pixels).await {
            Ok(scores) => {
                for ((card, pixels, before), scores) in cards.into_iter().zip(scores) {
                    // A heatmap explained the previous answer, not this one.
                    card.heat.set(None);
                    card.result.set(CardResult::Done(Classified { pixels, scores, before }));
                }
            }
            Err(e) => {
                for (card, ..) in cards {
                    card.result.set(CardResult::Failed(format!("classification failed: {e}")));
                }
            }
        }
    }

    /// Re-frames a card's photo (turn, mirror, crop) and classifies the new view, read again
    /// from the original file. A framing that cannot be applied (an empty or tiny crop box)
    /// leaves the card's framing and answer as they were and says why on the card.
    pub fn reframe(self, card: Card, framing: Framing) {
        card.framing_error.set(None);
        spawn_local(async move {
            match decoder::decode(&card.file, framing).await {
                Ok(decoded) => {
                    card.framing.set(framing);
                    card.thumbnails.set(decoded.thumbnails);
                    card.frame.set(Some(decoded.frame));
                    card.item.set(Some(decoded.item));
                    card.result.set(CardResult::Working);
                    self.classify_cards(vec![(card, decoded.pixels, None)]).await;
                }
                Err(e) => card.framing_error.set(Some(format!("Not re-framed: {e}. The card keeps its framing and answer."))),
            }
        });
    }

    /// Computes the heatmap of a card's answer ("Why?") on the engine in use; a failure is
    /// shown on the page and changes nothing else.
    pub fn explain(self, card: Card, pixels: Vec<f32>) {
        spawn_local(async move {
            match self.explain_pixels(&pixels).await {
                Ok(heat) => card.heat.set(Some(heat)),
                Err(e) => self.error.set(Some(format!("Could not explain this answer: {e}"))),
            }
        });
    }

    /// The heatmap on WebGPU when it runs (on the CPU if it fails there), else on the CPU.
    async fn explain_pixels(&self, pixels: &[f32]) -> Result<Vec<f32>, String> {
        let engine = self.engine().await?;
        if let Some(gpu) = self.current_gpu() {
            match gpu.explain(pixels).await {
                Ok(heat) => return Ok(heat),
                Err(e) => self.gpu_failed(e, "explain"),
            }
        }
        engine.explain(pixels).await.map_err(|e| e.to_string())
    }

    /// Classifies every finished card again (after the model changed).
    pub async fn reclassify_all(&self) {
        let done: Vec<(Card, Vec<f32>, Option<(usize, f32)>)> = self
            .cards
            .get_untracked()
            .into_iter()
            .filter_map(|card| {
                let (pixels, before) = card.result.with_untracked(CardResult::to_reclassify)?;
                Some((card, pixels, Some(before)))
            })
            .collect();
        // Show that the answers are being replaced rather than leave stale ones in place.
        for (card, ..) in &done {
            card.result.set(CardResult::Working);
        }
        self.classify_cards(done).await;
    }

    /// Validates a weights file and, if it is good, puts it in place of the model of its
    /// kind. A bad file changes nothing.
    pub fn load_weights(self, file: web_sys::File) {
        spawn_local(async move {
            let name = file.name();
            let result = async {
                let bytes = browser::read_file(&file).await.map_err(|e| format!("{name}: {e}"))?;
                let engine = self.engine().await?;
                engine.with_weights(bytes).map_err(|e| format!("{name} was not loaded: {e}. The previous model is still in use."))
            }
            .await;
            match result {
                Ok(next) => {
                    self.swap_engine(next).await;
                    self.error.set(None);
                    self.notice.set(Some(format!("Loaded {name}.")));
                    self.reclassify_all().await;
                }
                Err(e) => self.error.set(Some(e)),
            }
        });
    }
}

impl AppState {
    /// The photos the user labelled, as a fine-tuning set.
    pub fn teaching_set(&self) -> LabelledImages {
        let cards = self.cards.get_untracked();
        gallery::teaching_set(cards.iter().map(|c| (c.teach.get_untracked(), c.result.get_untracked())))
    }

    /// Fine-tunes the CNN on the labelled photos; on success the new model replaces the old
    /// one, is saved in this browser and every card is classified again.
    pub fn fine_tune(self) {
        if matches!(self.tuning.get_untracked(), Tuning::Running { .. }) {
            return;
        }
        let user = self.teaching_set();
        if user.is_empty() {
            self.error.set(Some("Choose the right class under at least one photo first (“Teach”).".into()));
            return;
        }
        let config = self.tune_config.get_untracked();
        let steps = config.steps;
        self.cancel.set(false);
        self.losses.set(Vec::new());
        self.tuning.set(Tuning::Running { step: 0, steps });
        spawn_local(async move {
            let result = async {
                let engine = self.engine().await?;
                let sets = samples::sets().await?;
                let on_step = move |step, loss| {
                    self.losses.update(|l| l.push(loss));
                    self.tuning.set(Tuning::Running { step, steps });
                };
                let cancelled = move || self.cancel.get_untracked();
                // On WebGPU when it runs; a failure there is reported, not retried on the CPU
                // (the user chooses to run it again), and a lost device moves the page to the
                // CPU. On the CPU in a worker, so that the page stays responsive; on the page
                // itself only where the worker cannot start.
                let outcome = match self.current_gpu() {
                    Some(gpu) => match gpu.fine_tune(&user, &sets, &config, on_step, cancelled).await {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            let why = e.to_string();
                            if matches!(e, GpuError::Lost(_)) {
                                self.gpu_failed(e, "fine-tune");
                            }
                            return Err(why);
                        }
                    },
                    None => match tuner::fine_tune(&engine.cnn.bytes, &user, &sets, &config, on_step, cancelled).await {
                        Ok(outcome) => outcome,
                        Err(tuner::Failure::Failed(e)) => return Err(e),
                        Err(tuner::Failure::Unavailable(why)) => {
                            web_sys::console::warn_1(
                                &format!("The fine-tuning worker could not start ({why}); training on the page.").into(),
                            );
                            tuning::run(&engine, user, &sets, config, on_step, cancelled).await.map_err(|e| e.to_string())?
                        }
                    },
                };
                let tuning::Outcome::Done { weights, report } = outcome else {
                    return Ok(None);
                };
                let next = engine.with_weights(weights.clone()).map_err(|e| e.to_string())?;
                Ok::<_, String>(Some((next, weights, report)))
            }
            .await;
            match result {
                Ok(Some((next, weights, report))) => {
                    self.swap_engine(next).await;
                    if let Err(e) = storage::put(storage::FINE_TUNED, &weights).await {
                        self.notice.set(Some(format!(
                            "The fine-tuned model is in use but could not be saved in this browser ({e}); download it to keep it."
                        )));
                    }
                    // The report appears once every card shows the new model's answer.
                    self.reclassify_all().await;
                    self.tuning.set(Tuning::Done(report));
                }
                Ok(None) => self.tuning.set(Tuning::Cancelled),
                Err(e) => self.tuning.set(Tuning::Failed(e)),
            }
        });
    }

    pub fn cancel_fine_tuning(&self) {
        self.cancel.set(true);
    }

    /// Back to the shipped CNN; the saved fine-tuned model is deleted.
    pub fn reset_model(self) {
        spawn_local(async move {
            let result = async {
                let engine = self.engine().await?;
                let shipped = self.shipped_cnn.get_value().ok_or("the shipped model is not loaded")?;
                let next = engine.with_weights(shipped.to_vec()).map_err(|e| e.to_string())?;
                storage::delete(storage::FINE_TUNED).await?;
                Ok::<_, String>(next)
            }
            .await;
            match result {
                Ok(next) => {
                    self.swap_engine(next).await;
                    self.tuning.set(Tuning::Idle);
                    self.notice.set(Some("Back to the shipped model; the fine-tuned one was deleted from this browser.".into()));
                    self.reclassify_all().await;
                }
                Err(e) => self.error.set(Some(format!("Reset failed: {e}"))),
            }
        });
    }

    /// Offers the CNN in use as a `.fmw` file, readable by `trainer evaluate --weights`.
    pub fn download_weights(&self) {
        if let Some(engine) = self.current_engine() {
            let name = if engine.cnn.summary.fine_tuned == Some(true) { "fashion-cnn-fine-tuned.fmw" } else { "fashion-cnn.fmw" };
            if let Err(e) = browser::download(&engine.cnn.bytes, name) {
                self.error.set(Some(format!("Download failed: {e}")));
            }
        }
    }
}
