//! `trainer predict` and `trainer evaluate`: run a weights file on photos or on the test set.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};
use clap::Args;
use fashion_model::{
    DecodeLimits, IMAGE_PIXELS, IMAGE_SIDE, WeightsFile, calibration,
    network::{argmax, images_tensor},
    preprocess_bytes,
    verdict::Verdict,
};
use serde::Serialize;

use crate::{CommonArgs, backend, data, metrics};

#[derive(Args)]
pub struct PredictArgs {
    /// Weights file [default: the shipped CNN, web/cnn.fmw]
    #[arg(long)]
    weights: Option<PathBuf>,
    /// One JSON object per line instead of text (with the logits, before softmax).
    #[arg(long)]
    json: bool,
    /// Feed each image to the network as it is, without finding and framing the item: it
    /// must be 28×28 (Fashion-MNIST's own format, light item on black); pixels / 255.
    #[arg(long)]
    as_is: bool,
    #[arg(long, value_enum, default_value_t = backend::BackendChoice::Cpu)]
    backend: backend::BackendChoice,
    /// Image files (PNG, JPEG, WebP, GIF, BMP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Weights file to score (from the trainer or downloaded from the page).
    #[arg(long)]
    weights: PathBuf,
    /// Print the metrics as JSON.
    #[arg(long)]
    json: bool,
    /// Score only the first N test images (the page's held-out slice is the first 500).
    #[arg(long)]
    limit: Option<usize>,
}

/// The shipped CNN: `web/cnn.fmw` from the current folder, else from the source tree.
pub fn shipped_weights() -> PathBuf {
    let local = Path::new("web/cnn.fmw");
    if local.exists() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/cnn.fmw")
}

fn load_weights(path: &Path, device: &burn::prelude::Device) -> Result<WeightsFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
    WeightsFile::decode(&bytes, device).with_context(|| format!("{}", path.display()))
}

#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Ok {
        file: &'a str,
        label: usize,
        class: &'a str,
        confidence: f32,
        /// False when the page would say "not sure" (then `candidates` lists the likely classes).
        sure: bool,
        candidates: Vec<&'a str>,
        /// One per class of the weights file (the ten, then any of the user's own).
        probs: Vec<f32>,
        /// Before the calibration temperature and softmax (what an ONNX export outputs).
        logits: &'a [f32],
    },
    Err {
        file: &'a str,
        error: String,
    },
}

pub fn predict(args: PredictArgs) -> Result<ExitCode> {
    let device = backend::select(args.backend)?.device;
    let weights = args.weights.clone().unwrap_or_else(shipped_weights);
    let model = load_weights(&weights, &device)?;

    // Decode everything first, then one batched forward pass for the files that decoded.
    // Each file's row in the batch, and whether its item was found on a surface.
    let mut results: Vec<Result<(usize, bool), String>> = Vec::new();
    let mut pixels = Vec::new();
    for path in &args.images {
        let outcome = std::fs::read(path).map_err(|e| format!("cannot read file: {e}")).and_then(|bytes| {
            if args.as_is {
                as_is(&bytes).map(|p| (p, false))
            } else {
                preprocess_bytes(&bytes, DecodeLimits::default()).map(|p| (p.pixels.to_vec(), p.on_surface)).map_err(|e| e.to_string())
            }
        });
        results.push(outcome.map(|(p, on_surface)| {
            pixels.extend_from_slice(&p);
            (pixels.len() / IMAGE_PIXELS - 1, on_surface)
        }));
    }
    let logits = if pixels.is_empty() {
        Vec::new()
    } else {
        let logits = model.network.for_inference().forward(images_tensor(pixels, &device));
        logits.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?
    };
    let classes = model.classes.len();
    let rule = model.summary.unsure_rule();

    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for (path, result) in args.images.iter().zip(results) {
        let file = path.display().to_string();
        let line = match result {
            Ok((row, on_surface)) => {
                let row_logits = &logits[row * classes..(row + 1) * classes];
                let p = calibration::row_probabilities(row_logits, model.temperature());
                let label = argmax(&p);
                // The page's "not sure" rule, so that both say the same.
                let verdict = rule.judge_input(row_logits, model.temperature(), on_surface);
                let candidates = match &verdict {
                    Verdict::Sure { .. } => Vec::new(),
                    Verdict::Unsure { candidates, .. } => candidates.iter().map(|&(c, _)| model.classes[c].as_str()).collect(),
                };
                Line::Ok {
                    file: &file,
                    label,
                    class: &model.classes[label],
                    confidence: p[label],
                    sure: verdict.is_sure(),
                    candidates,
                    probs: p,
                    logits: row_logits,
                }
            }
            Err(error) => {
                failed += 1;
                Line::Err { file: &file, error }
            }
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        } else {
            match line {
                Line::Ok { class, confidence, sure: true, .. } => writeln!(out, "{file}: {class} ({:.1}%)", 100.0 * confidence)?,
                Line::Ok { candidates, .. } => writeln!(out, "{file}: not sure; maybe {}", candidates.join(", "))?,
                Line::Err { error, .. } => writeln!(out, "{file}: error: {error}")?,
            }
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A 28×28 image's gray levels / 255, the network's input without preprocessing.
fn as_is(bytes: &[u8]) -> Result<Vec<f32>, String> {
    let image = image::load_from_memory(bytes).map_err(|e| format!("cannot decode the image: {e}"))?.into_luma8();
    if image.dimensions() != (IMAGE_SIDE as u32, IMAGE_SIDE as u32) {
        let (w, h) = image.dimensions();
        return Err(format!(
            "--as-is takes 28×28 images (the network's input); this one is {w}×{h}: leave --as-is out to find and frame the item"
        ));
    }
    Ok(image.pixels().map(|p| p.0[0] as f32 / 255.0).collect())
}

pub fn evaluate(args: EvaluateArgs) -> Result<ExitCode> {
    let device = backend::select(args.common.backend)?.device;
    let model = load_weights(&args.weights, &device)?;
    let data = data::load(args.common.data_dir.as_deref())?;
    let test = match args.limit {
        Some(n) => data.test.truncate(n),
        None => data.test,
    };
    let eval = metrics::evaluate(&model.network, &test, &device, 500)?;
    if args.json {
        let mut value = serde_json::to_value(&eval)?;
        value["images"] = test.len().into();
        value["architecture"] = serde_json::to_value(&model.architecture)?;
        println!("{value}");
    } else {
        println!("{}: {} on {} test images", args.weights.display(), model.architecture.name(), test.len());
        println!("accuracy {:.2}%  loss {:.4}  macro F1 {:.4}", 100.0 * eval.accuracy, eval.loss, eval.macro_f1);
        println!("{:<12} {:>9} {:>7} {:>7}", "class", "precision", "recall", "F1");
        for c in &eval.per_class {
            println!("{:<12} {:>9.3} {:>7.3} {:>7.3}", c.class, c.precision, c.recall, c.f1);
        }
    }
    Ok(ExitCode::SUCCESS)
}
