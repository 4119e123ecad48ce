//! The CNN in use: a weights file the user loads, a fine-tuning run on their labelled photos,
//! back to the shipped model, and downloading it. Each change of model is saved (or deleted)
//! in this browser and followed by classifying every card again.

use fashion_engine::{Engine, finetune::Outcome};
use fashion_gallery::{HeldOutScore, TeachingSet, accuracy, teaching_set};
use fashion_model::{LabelledImages, network::argmax};
use leptos::{prelude::*, task::spawn_local};

use super::AppState;
use crate::{browser, finetune_sets, storage};

impl AppState {
    /// Validates a weights file and, if it is good, puts it in place of the model of its
    /// kind. A bad file changes nothing.
    pub fn load_weights(self, file: web_sys::File) {
        spawn_local(async move {
            let name = file.name();
            let result = async {
                let bytes = browser::read_file(&file).await.map_err(|e| format!("{name}: {e}"))?;
                let engine = self.router.engine().await?;
                engine.with_weights(bytes).map_err(|e| format!("{name} was not loaded: {e}. The previous model is still in use."))
            }
            .await;
            match result {
                Ok(next) => {
                    let was = self.install(next).await;
                    self.error.set(None);
                    self.notice.set(Some(format!("Loaded {name}.")));
                    self.reclassify_all(&was).await;
                }
                Err(e) => self.error.set(Some(e)),
            }
        });
    }

    /// Fine-tunes the CNN on the labelled photos that are not held out; on success the new
    /// model replaces the old one, is saved in this browser, is measured on the held-out photos
    /// beside the old one, and every card is classified again.
    pub fn fine_tune(self) {
        let taught = self.gallery.with_untracked(|g| teaching_set(g.cards().iter().map(|c| (c.taught(), c.result.get_untracked()))));
        let classes = self.classes.get_untracked();
        let TeachingSet { train: user, held_out } = match taught.and_then(|set| classes.ready_to_teach(&set.train).map(|()| set)) {
            Ok(set) => set,
            Err(e) => return self.error.set(Some(e.to_string())),
        };
        let classes = classes.names().to_vec();
        let config = self.tune_config.get_untracked();
        let mut started = Ok(());
        self.tuning.update(|run| started = run.start(config.steps));
        if let Err(e) = started {
            return self.error.set(Some(e.to_string()));
        }
        spawn_local(async move {
            let result = async {
                let engine = self.router.engine().await?;
                let sets = finetune_sets::load().await?;
                let on_step = move |step, loss| self.tuning.update(|run| run.step(step, loss));
                let cancelled = move || self.tuning.with_untracked(|run| run.cancel_requested());
                let Outcome::Done { weights, report } = self.router.fine_tune(&user, &classes, &sets, &config, on_step, cancelled).await?
                else {
                    return Ok(None);
                };
                let next = engine.with_weights(weights.clone()).map_err(|e| e.to_string())?;
                let score = held_out_score(&engine, &next, &held_out).await?;
                Ok::<_, String>(Some((next, weights, (report, score))))
            }
            .await;
            let Ok(Some((next, weights, report))) = result else {
                return self.tuning.update(|run| run.finish(result.map(|_| None)));
            };
            let was = self.install(next).await;
            if let Err(e) = storage::put(storage::FINE_TUNED, &weights).await {
                self.notice.set(Some(format!(
                    "The fine-tuned model is in use but could not be saved in this browser ({e}); download it to keep it."
                )));
            }
            // The report appears once every card shows the new model's answer.
            self.reclassify_all(&was).await;
            self.tuning.update(|run| run.finish(Ok(Some(report))));
        });
    }

    pub fn cancel_fine_tuning(&self) {
        self.tuning.update(|run| run.cancel());
    }

    /// Back to the shipped CNN; the saved fine-tuned model is deleted.
    pub fn reset_model(self) {
        spawn_local(async move {
            let result = async {
                let engine = self.router.engine().await?;
                let shipped = self.shipped_cnn.get_value().ok_or("the shipped model is not loaded")?;
                let next = engine.with_weights(shipped.to_vec()).map_err(|e| e.to_string())?;
                storage::delete(storage::FINE_TUNED).await?;
                Ok::<_, String>(next)
            }
            .await;
            match result {
                Ok(next) => {
                    let was = self.install(next).await;
                    self.tuning.update(|run| run.forget());
                    self.notice.set(Some(
                        "Back to the shipped model; the fine-tuned one was deleted from this browser. Your own classes stay, to be taught again."
                            .into(),
                    ));
                    self.reclassify_all(&was).await;
                }
                Err(e) => self.error.set(Some(format!("Reset failed: {e}"))),
            }
        });
    }

    /// Offers the CNN in use (fine-tuned or not) as an ONNX file, for other runtimes.
    pub fn download_onnx(&self) {
        let Some(engine) = self.router.models() else { return };
        let name = if engine.cnn.summary.fine_tuned == Some(true) { "fashion-cnn-fine-tuned.onnx" } else { "fashion-cnn.onnx" };
        if let Err(e) = engine.cnn.onnx().and_then(|bytes| browser::download(&bytes, name)) {
            self.error.set(Some(format!("The ONNX file could not be made: {e}")));
        }
    }

    /// Offers the CNN in use as a `.fmw` file, readable by `trainer evaluate --weights`.
    pub fn download_weights(&self) {
        if let Some(engine) = self.router.models() {
            let name = if engine.cnn.summary.fine_tuned == Some(true) { "fashion-cnn-fine-tuned.fmw" } else { "fashion-cnn.fmw" };
            if let Err(e) = browser::download(&engine.cnn.bytes, name) {
                self.error.set(Some(format!("Download failed: {e}")));
            }
        }
    }
}

/// The old and the new model's accuracy on the user's held-out photos (on the page's CPU copy
/// of each: a few dozen images at most); `None` when none are held out.
async fn held_out_score(before: &Engine, after: &Engine, held_out: &LabelledImages) -> Result<Option<HeldOutScore>, String> {
    if held_out.is_empty() {
        return Ok(None);
    }
    let pixels: Vec<f32> = held_out.pixels.iter().map(|&v| f32::from(v) / 255.0).collect();
    let mut score = HeldOutScore { images: held_out.len(), before: 0.0, after: 0.0 };
    for (engine, into) in [(before, &mut score.before), (after, &mut score.after)] {
        let scores = engine.classify(&pixels).await.map_err(|e| e.to_string())?;
        let predicted: Vec<usize> = scores.iter().map(|s| argmax(&s.cnn)).collect();
        *into = accuracy(&predicted, &held_out.labels);
    }
    Ok(Some(score))
}
