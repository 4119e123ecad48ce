//! The app's reactive state, shared through Leptos context, and the actions that change it
//! (start-up, classifying uploads, swapping weights). Components stay thin.

use std::{cell::RefCell, rc::Rc};

use fashion_engine::{
    engine::{self, Backend, BackendKind, Engine, Scores},
    tuning,
};
use fashion_model::{CLASS_NAMES, Framing, LabelledImages, NUM_CLASSES, TrainingSummary, finetune::FineTuneConfig, framing::Thumbnail};
use leptos::{prelude::*, task::spawn_local};

use crate::{browser, decoder, gpu, samples, storage};

thread_local! {
    /// The shipped CNN's file, for "Reset".
    static SHIPPED_CNN: RefCell<Option<Rc<Vec<u8>>>> = const { RefCell::new(None) };
}

/// Oldest cards are dropped past this many (their photo's object URL is released), so a long
/// session does not grow without bound.
pub const MAX_CARDS: usize = 200;

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

/// A classified image.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    /// The 28×28 model input, 0..=1.
    pub pixels: Vec<f32>,
    pub scores: Scores,
    /// The answer of the model used before the last change (fine-tuning, loaded weights,
    /// reset): class and calibrated confidence, shown beside the new one.
    pub before: Option<(usize, f32)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CardResult {
    Working,
    Failed(String),
    Done(Classified),
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
        }
    }

    /// Puts `engine` in charge (start-up, new weights, a fine-tune, a reset), shows its models
    /// and gives them to the WebGPU module if it runs: the one place the models change.
    async fn swap_engine(&self, engine: Engine) -> Rc<Engine> {
        let info = |m: &engine::Model| ModelInfo { name: m.architecture.name().to_string(), params: m.params, summary: m.summary.clone() };
        self.models.set(ModelsInfo { cnn: Some(info(&engine.cnn)), baseline: engine.baseline.as_ref().map(info) });
        let engine = engine::install(engine);
        if let Some(gpu) = gpu::current() {
            if let Err(e) = gpu.set_models(&engine.cnn.bytes, engine.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
                self.use_cpu(format!("WebGPU could not take the new model ({e}); switched to the CPU"));
            }
        }
        engine
    }

    /// Classification moves to the CPU module for good, and the badge says why.
    fn use_cpu(&self, why: String) {
        gpu::stop();
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
        SHIPPED_CNN.with(|s| *s.borrow_mut() = Some(Rc::new(cnn.clone())));
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
        let Some(models) = engine::current() else { return };
        // Asked of the browser first: without an adapter the module is not worth its download.
        if let Err(why) = fashion_engine::js::probe_webgpu().await {
            return self.use_cpu(why);
        }
        match gpu::start(&models.cnn.bytes, models.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
            Ok(gpu) => {
                // The models may have changed while WebGPU started (loaded weights, a reset).
                let now = engine::current().unwrap_or(models.clone());
                if !Rc::ptr_eq(&now, &models) {
                    if let Err(e) = gpu.set_models(&now.cnn.bytes, now.baseline.as_ref().map(|m| m.bytes.as_slice())).await {
                        return self.use_cpu(format!("WebGPU could not take the model ({e})"));
                    }
                }
                self.backend.set(BackendStatus { kind: Some(BackendKind::WebGpu), detail: gpu.adapter.clone(), pending: false });
                browser::mark("fashion-webgpu-ready");
            }
            Err(why) => self.use_cpu(why),
        }
    }

    /// The page's models, waiting for start-up to finish if needed.
    async fn engine(&self) -> Result<Rc<Engine>, String> {
        loop {
            if let Some(engine) = engine::current() {
                return Ok(engine);
            }
            if self.error.get_untracked().is_some() && !self.ready.get_untracked() {
                return Err("the model is not loaded".into());
            }
            browser::sleep_ms(50).await;
        }
    }

    /// Classifies on WebGPU when it runs, else on the CPU. If WebGPU fails (device lost, out
    /// of memory), moves to the CPU, says so, and answers there: the user still gets an answer.
    pub async fn classify(&self, pixels: &[f32]) -> Result<Vec<Scores>, String> {
        let engine = self.engine().await?;
        if let Some(gpu) = gpu::current() {
            match gpu.logits(pixels).await {
                // The page's copy of the models calibrates, as for the CPU's logits.
                Ok((cnn, baseline)) => return Ok(engine.scores(&cnn, baseline.as_deref())),
                Err(e) => self.gpu_failed(e),
            }
        }
        engine.classify(pixels).await
    }

    fn gpu_failed(&self, e: String) {
        self.use_cpu(format!("WebGPU stopped working ({e}); switched to the CPU"));
        self.notice.set(Some("The GPU stopped responding; the page now runs on the CPU.".into()));
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
                heat: RwSignal::new(None),
                file: file.clone(),
                framing: RwSignal::new(Framing::default()),
                thumbnails: RwSignal::new(None),
                unreadable: RwSignal::new(None),
                framing_error: RwSignal::new(None),
            };
            jobs.push((card, file));
        }
        self.cards.update(|cards| {
            for (card, _) in &jobs {
                cards.insert(0, card.clone());
            }
            for dropped in cards.drain(MAX_CARDS.min(cards.len())..) {
                if let Some(url) = dropped.photo_url {
                    let _ = web_sys::Url::revoke_object_url(&url);
                }
            }
        });
        spawn_local(async move {
            let mut ready = Vec::new();
            for (card, file) in jobs {
                match decoder::decode(&file, Framing::default()).await {
                    Ok(decoded) => {
                        card.frame.set(Some(decoded.frame));
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
        if let Some(gpu) = gpu::current() {
            match gpu.explain(pixels).await {
                Ok(heat) => return Ok(heat),
                Err(e) => self.gpu_failed(e),
            }
        }
        engine.explain(pixels).await
    }

    /// Classifies every finished card again (after the model changed).
    pub async fn reclassify_all(&self) {
        let done: Vec<(Card, Vec<f32>, Option<(usize, f32)>)> = self
            .cards
            .get_untracked()
            .into_iter()
            .filter_map(|card| match card.result.get_untracked() {
                CardResult::Done(c) => {
                    let (label, _, confidence) = describe(&c.scores.cnn);
                    Some((card, c.pixels, Some((label, confidence))))
                }
                _ => None,
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
        let mut set = LabelledImages::default();
        for card in self.cards.get_untracked() {
            if let (Some(label), CardResult::Done(c)) = (card.teach.get_untracked(), card.result.get_untracked()) {
                let image: Vec<u8> = c.pixels.iter().map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
                set.push(&image, label);
            }
        }
        set
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
                // (the user chooses to run it again).
                let outcome = match gpu::current() {
                    Some(gpu) => gpu.fine_tune(&user, &sets, &config, on_step, cancelled).await?,
                    None => tuning::run(&engine, user, &sets, config, on_step, cancelled).await?,
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
                let shipped = SHIPPED_CNN.with(|s| s.borrow().clone()).ok_or("the shipped model is not loaded")?;
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
        if let Some(engine) = engine::current() {
            let name = if engine.cnn.summary.fine_tuned == Some(true) { "fashion-cnn-fine-tuned.fmw" } else { "fashion-cnn.fmw" };
            if let Err(e) = browser::download(&engine.cnn.bytes, name) {
                self.error.set(Some(format!("Download failed: {e}")));
            }
        }
    }
}

/// "Sneaker, 97.1%".
pub fn describe(probs: &[f32; NUM_CLASSES]) -> (usize, &'static str, f32) {
    let label = fashion_model::network::argmax(probs);
    (label, CLASS_NAMES[label], probs[label])
}
