//! The page's state, shared through Leptos context: the domain values of `fashion-gallery`
//! (gallery, teaching set, fine-tuning run) held in signals, the backend [`Router`] that runs
//! the models, and the browser actions that change them. Components only render and call these
//! actions; each action is a short sequence of domain operations and router calls.
//!
//! - `router.rs`: which backend answers (CPU or WebGPU), and the fail-over between them;
//! - `card.rs`: one photo's card, its signals owned so that dropping it disposes them all;
//! - `startup.rs`: loading the models, answering on the CPU, then moving to WebGPU;
//! - `photos.rs`: adding, re-framing, explaining and re-classifying cards;
//! - `models.rs`: loading, fine-tuning, resetting and downloading the CNN;
//! - `classes.rs`: the user's own classes: adding, renaming, removing them;
//! - `project.rs`: saving the teaching set with the model as one file, and opening it again;
//! - `camera.rs`: the live camera: answering its frames, snapping and recording them.

mod camera;
mod card;
mod classes;
mod models;
mod photos;
mod project;
mod router;
mod startup;

use std::rc::Rc;

use fashion_engine::engine;
use fashion_gallery::{Camera, ClassList, FineTuneRun, Gallery};
use fashion_model::{TrainingSummary, finetune::FineTuneConfig};
use leptos::prelude::*;

pub use camera::LiveAnswer;
pub use card::Card;
pub use router::{BackendStatus, Router};

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

impl ModelInfo {
    fn of(model: &engine::Model) -> Self {
        Self { name: model.architecture.name().to_string(), params: model.params, summary: model.summary.clone() }
    }
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub router: Router,
    /// Set once the page can answer.
    pub ready: RwSignal<bool>,
    /// Page-level messages (weights could not load, a bad weights file…).
    pub error: RwSignal<Option<String>>,
    pub notice: RwSignal<Option<String>>,
    pub gallery: RwSignal<Gallery<Card>>,
    /// The classes answered and taught: the model's, then the user's not learnt yet.
    pub classes: RwSignal<ClassList>,
    pub models: RwSignal<ModelsInfo>,
    pub tuning: RwSignal<FineTuneRun>,
    pub tune_config: RwSignal<FineTuneConfig>,
    pub camera: RwSignal<Camera>,
    /// What the network made of the camera's latest frame.
    pub live: RwSignal<Option<LiveAnswer>>,
    /// The camera, while the page has it.
    stream: StoredValue<Option<Rc<crate::camera::Stream>>, LocalStorage>,
    /// The shipped CNN's file, for "Reset".
    shipped_cnn: StoredValue<Option<Rc<Vec<u8>>>, LocalStorage>,
    /// The app's reactive owner: each card's signals live in a child of it.
    owner: StoredValue<Owner>,
}

impl AppState {
    /// Created once, by the app's root component.
    pub fn new() -> Self {
        let notice = RwSignal::new(None);
        Self {
            router: Router::new(notice),
            ready: RwSignal::new(false),
            error: RwSignal::new(None),
            notice,
            gallery: RwSignal::new(Gallery::default()),
            classes: RwSignal::new(ClassList::default()),
            models: RwSignal::new(ModelsInfo::default()),
            tuning: RwSignal::new(FineTuneRun::default()),
            tune_config: RwSignal::new(FineTuneConfig::default()),
            camera: RwSignal::new(Camera::default()),
            live: RwSignal::new(None),
            stream: StoredValue::new_local(None),
            shipped_cnn: StoredValue::new_local(None),
            owner: StoredValue::new(Owner::current().unwrap_or_default()),
        }
    }

    /// The cards, newest first (tracked).
    pub fn cards(&self) -> Vec<Card> {
        self.gallery.with(|g| g.cards().to_vec())
    }

    /// Puts `engine` in charge (start-up, new weights, a fine-tune, a reset, a change of the
    /// user's classes) and shows its models and classes: the one place the models change.
    /// Returns the class names of the model it replaces, to name the cards' previous answers.
    async fn install(&self, engine: engine::Engine) -> Vec<String> {
        let was = self.classes.with_untracked(|c| c.names()[..c.learnt()].to_vec());
        self.models.set(ModelsInfo { cnn: Some(ModelInfo::of(&engine.cnn)), baseline: engine.baseline.as_ref().map(ModelInfo::of) });
        self.set_classes(self.classes.get_untracked().with_model(&engine.cnn.classes));
        self.router.install(engine).await;
        was
    }
}
