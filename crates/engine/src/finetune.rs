//! Fine-tuning in the tab: the user's labelled photos plus replayed Fashion-MNIST images,
//! trained with burn's autodiff on the backend in use, one step per animation frame so the
//! page stays responsive; accuracy before and after on the shipped held-out slice and on the
//! user's photos.

use fashion_model::{
    IMAGE_PIXELS, LabelledImages, Precision, WeightsFile,
    finetune::{FineTuneConfig, FineTuner, Report},
    network::{Network, argmax, copy_to_device_async},
};

use crate::{EngineError, engine, js};

/// The sets the trainer writes beside the weights (`trainer samples`); the page downloads
/// them once.
pub struct Sets {
    pub replay: LabelledImages,
    pub heldout: LabelledImages,
}

/// Share of `labels` that `network` gets right on `pixels` (n × 784 in 0..=1).
pub async fn accuracy(network: &Network, device: &burn::prelude::Device, pixels: &[f32], labels: &[u8]) -> Result<f64, EngineError> {
    if labels.is_empty() {
        return Ok(f64::NAN);
    }
    let mut correct = 0;
    for (chunk, chunk_labels) in pixels.chunks(250 * IMAGE_PIXELS).zip(labels.chunks(250)) {
        let logits = engine::logits(network, chunk, device).await?;
        correct += logits.chunks_exact(network.classes()).zip(chunk_labels).filter(|(row, l)| argmax(row) == **l as usize).count();
        js::yield_now().await;
    }
    Ok(correct as f64 / labels.len() as f64)
}

pub enum Outcome {
    Done { weights: Vec<u8>, report: Report },
    Cancelled,
}

/// The network a run starts from: the engine's CNN, with an imprinted row for each class of
/// `classes` (the class list, in label order) it has not learnt yet
/// ([`fashion_model::head`]). The rows are made on a CPU copy (they read the network
/// synchronously) and the result is copied back to the engine's device.
async fn starting_network(engine: &engine::Engine, classes: &[String], user: &LabelledImages, sets: &Sets) -> Result<Network, EngineError> {
    let base = &engine.cnn;
    if !classes.starts_with(&base.classes) {
        return Err(EngineError::Classes(format!(
            "the class list ({}) does not begin with the model's classes ({})",
            classes.join(", "),
            base.classes.join(", ")
        )));
    }
    if let Some(label) = user.labels.iter().find(|&&l| l as usize >= classes.len()) {
        return Err(EngineError::Classes(format!("a photo is taught class {label}, which is not in the class list")));
    }
    if classes.len() == base.classes.len() {
        return Ok(base.network.clone());
    }
    let cpu = burn::prelude::Device::flex();
    let on_cpu = copy_to_device_async(&base.network, &cpu).await.map_err(EngineError::device)?;
    let grown = on_cpu.with_new_classes(classes.len(), user, &sets.replay, classes).map_err(|e| EngineError::Classes(e.to_string()))?;
    copy_to_device_async(&grown, &engine.backend.device).await.map_err(EngineError::device)
}

/// Runs fine-tuning from the engine's CNN, into the classes `classes` (label order: the
/// model's, then the user's new ones). `on_step(step, loss)` reports progress;
/// `cancelled()` is checked between steps. The returned weights file is in the trainer's
/// format.
pub async fn run(
    engine: &engine::Engine,
    user: LabelledImages,
    classes: &[String],
    sets: &Sets,
    config: FineTuneConfig,
    on_step: impl Fn(usize, f32),
    cancelled: impl Fn() -> bool,
) -> Result<Outcome, EngineError> {
    let device = &engine.backend.device;
    let base = &engine.cnn;
    let start = starting_network(engine, classes, &user, sets).await?;
    let heldout = sets.heldout.to_f32();
    let user_pixels = user.to_f32();
    let heldout_before = accuracy(&base.network, device, &heldout, &sets.heldout.labels).await?;
    // The photos of new classes count as wrong before: the old model cannot name them.
    let user_before = accuracy(&base.network, device, &user_pixels, &user.labels).await?;

    let steps = config.steps;
    let batch = config.batch_size;
    let user_labels = user.labels.clone();
    let mut tuner = FineTuner::new(&start, device, config, user, sets.replay.clone());
    let started = js::now_ms();
    for step in 1..=steps {
        if cancelled() {
            return Ok(Outcome::Cancelled);
        }
        let loss = tuner.step().into_scalar_async::<f32>().await.map_err(EngineError::device)?;
        if !loss.is_finite() {
            return Err(EngineError::Diverged { step, loss });
        }
        on_step(step, loss);
        js::yield_now().await;
    }
    let seconds = (js::now_ms() - started) / 1000.0;
    let network = tuner.network();
    let heldout_after = accuracy(&network, device, &heldout, &sets.heldout.labels).await?;
    let user_after = accuracy(&network, device, &user_pixels, &user_labels).await?;
    let report = Report {
        heldout_images: sets.heldout.len(),
        heldout_before,
        heldout_after,
        user_images: user_labels.len(),
        user_before,
        user_after,
        steps,
        seconds,
        images_per_second: (steps * batch) as f64 / seconds.max(1e-9),
    };

    // Saving reads every parameter: copy to the CPU first (WebGPU cannot read synchronously).
    let cpu = burn::prelude::Device::flex();
    let on_cpu = copy_to_device_async(&network, &cpu).await.map_err(EngineError::device)?;
    let mut summary = base.summary.clone();
    summary.fine_tuned = Some(true);
    summary.test_accuracy = None;
    summary.note = Some(format!(
        "fine-tuned in the browser on {} photo(s), {} steps; accuracy on the first {} test images {:.2}% (was {:.2}%)",
        report.user_images,
        steps,
        report.heldout_images,
        100.0 * heldout_after,
        100.0 * heldout_before
    ));
    // Full precision: the user's own work is kept exactly as trained.
    let weights = WeightsFile::encode_with_classes(&base.architecture, classes, &summary, on_cpu, Precision::F32)?;
    Ok(Outcome::Done { weights, report })
}
