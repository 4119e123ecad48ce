//! What the page benchmark (`cargo xtask bench-page`) measures, on whichever module's engine
//! is in use: the page's hooks call these on the CPU engine or forward them to the WebGPU
//! module, which runs the same functions on its own.

use fashion_model::{
    DecodeLimits, IMAGE_PIXELS,
    finetune::{FineTuneConfig, FineTuner, TrainableLayers},
    preprocess_bytes,
};

use crate::{Engine, EngineError, engine, finetune::Sets, js::now_ms};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Times decode + preprocess of `photo`, CNN inference at batch 1 and the page's whole
/// answer for one photo (CNN and baseline), as medians over `runs` after warm-up, and
/// throughput at batch 64. Returns JSON.
pub async fn inference(engine: &Engine, photo: &[u8], runs: u32) -> Result<String, EngineError> {
    let runs = runs.max(1);
    let mut preprocess = Vec::new();
    let mut input = None;
    for _ in 0..runs {
        let t = now_ms();
        let p = preprocess_bytes(photo, DecodeLimits::default()).map_err(|e| EngineError::Photo(e.to_string()))?;
        preprocess.push(now_ms() - t);
        input = Some(p.pixels);
    }
    let pixels = input.expect("runs ≥ 1").to_vec();
    let (cnn, device) = (&engine.cnn, &engine.backend.device);
    let batch: Vec<f32> = pixels.iter().copied().cycle().take(64 * IMAGE_PIXELS).collect();
    let (single, batch64) = time_forward(|p| async move { cnn.logits(&p, device).await }, &pixels, &batch, runs).await?;
    // What the page does for each uploaded photo: the CNN and the baseline, one read-back.
    let mut answer = Vec::new();
    for _ in 0..runs {
        let t = now_ms();
        engine.classify(&pixels).await?;
        answer.push(now_ms() - t);
    }
    // Where the hand-written kernels classify, burn's forward pass of the same network, timed
    // in the same way right after: the two compare within one sitting, whatever the machine.
    let mut burn = serde_json::Map::new();
    if cnn.direct.is_some() {
        let run = |p: Vec<f32>| async move { engine::logits(&cnn.inference, &p, device).await };
        let (single, batch64) = time_forward(run, &pixels, &batch, runs).await?;
        burn.insert("infer_batch1_ms_median".into(), single.into());
        burn.insert("batch64_images_per_s".into(), batch64.into());
    }
    Ok(serde_json::json!({
        "backend": engine.backend.kind.label(),
        "detail": engine.backend.detail,
        "runs": runs,
        "preprocess_ms_median": median(preprocess),
        "infer_batch1_ms_median": single,
        "classify_batch1_ms_median": median(answer),
        "batch64_images_per_s": batch64,
        "burn": burn,
    })
    .to_string())
}

/// One forward pass `run`, timed: the median of `runs` passes on one image (ms) and the
/// throughput of 5 passes on the 64-image `batch` (images/s), after 3 warm-up passes of each.
pub async fn time_forward<F, R>(run: F, image: &[f32], batch: &[f32], runs: u32) -> Result<(f64, f64), EngineError>
where
    F: Fn(Vec<f32>) -> R,
    R: Future<Output = Result<Vec<f32>, EngineError>>,
{
    for _ in 0..3 {
        run(image.to_vec()).await?;
        run(batch.to_vec()).await?;
    }
    let mut single = Vec::new();
    for _ in 0..runs {
        let t = now_ms();
        run(image.to_vec()).await?;
        single.push(now_ms() - t);
    }
    let batches = 5;
    let t = now_ms();
    for _ in 0..batches {
        run(batch.to_vec()).await?;
    }
    let images_per_s = (batches * batch.len() / IMAGE_PIXELS) as f64 / ((now_ms() - t) / 1000.0);
    Ok((median(single), images_per_s))
}

/// Fine-tuning throughput (forward + backward + optimizer step, images/s), `steps` steps at
/// the default batch of 32 (user photos stood in for by held-out images), after 2 warm-up
/// steps, for the dense layers and for all layers. Returns JSON.
pub async fn training(engine: &Engine, sets: &Sets, steps: u32) -> Result<String, EngineError> {
    let mut out = serde_json::Map::new();
    for layers in [TrainableLayers::Head, TrainableLayers::All] {
        let config = FineTuneConfig { layers, ..FineTuneConfig::default() };
        let batch = config.batch_size;
        let mut tuner = FineTuner::new(&engine.cnn.network, &engine.backend.device, config, sets.heldout.clone(), sets.replay.clone());
        let mut t = 0.0;
        for step in 0..steps.max(1) + 2 {
            if step == 2 {
                t = now_ms();
            }
            tuner.step().into_scalar_async::<f32>().await.map_err(EngineError::device)?;
        }
        let images_per_s = (steps.max(1) as usize * batch) as f64 / ((now_ms() - t) / 1000.0);
        out.insert(format!("{layers:?}").to_lowercase(), images_per_s.into());
    }
    out.insert("backend".into(), engine.backend.kind.label().into());
    Ok(serde_json::Value::Object(out).to_string())
}
