//! `trainer export --onnx`: the exported file, run in onnxruntime (`testkit::onnx`), gives the logits
//! `trainer predict` gives, within 1e-4, on 100 Fashion-MNIST test images, for every kind of
//! network; and a damaged weights file gets a clear error and no output.

use std::{path::Path, process::Command};

use burn::prelude::Device;
use fashion_model::{Architecture, Block, CompactConfig, IMAGE_SIDE, Precision, TrainingSummary, WeightsFile};
use serde_json::Value;

const IMAGES: usize = 100;
const TOLERANCE: f64 = 1e-4;

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("the command starts");
    assert!(out.status.success(), "{cmd:?} failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// The first test images as 28×28 PNGs (what `predict --as-is` reads) and as inputs.
fn test_images(dir: &Path) -> (Vec<std::path::PathBuf>, Vec<Vec<f32>>) {
    let data = trainer::data::load(None).expect("Fashion-MNIST is installed by `cargo xtask test`");
    (0..IMAGES)
        .map(|i| {
            let path = dir.join(format!("{i:03}.png"));
            let side = IMAGE_SIDE as u32;
            image::GrayImage::from_raw(side, side, data.test.image(i).to_vec()).unwrap().save(&path).unwrap();
            (path, data.test.image(i).iter().map(|&p| p as f32 / 255.0).collect())
        })
        .unzip()
}

/// Exports `weights`, runs it in onnxruntime and `trainer predict`, and returns what
/// onnxruntime reported.
fn export_and_compare(weights: &Path, dir: &Path) -> Value {
    let onnx = dir.join("model.onnx");
    run(trainer().arg("export").arg("--onnx").arg(&onnx).arg("--weights").arg(weights));
    let (files, inputs) = test_images(dir);
    let out = run(trainer().args(["predict", "--as-is", "--json", "--weights"]).arg(weights).args(&files));
    let logits: Vec<Vec<f32>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_value(serde_json::from_str::<Value>(l).unwrap()["logits"].clone()).unwrap())
        .collect();
    assert_eq!(logits.len(), IMAGES);
    // A comparison of near-zero logits would pass whatever the graph computed.
    let largest = logits.iter().flatten().fold(0f32, |m, &v| m.max(v.abs()));
    assert!(largest > 0.05, "logits of at most {largest}: too small to tell a wrong graph from a right one");
    let report = testkit::onnx::onnxruntime_report(&onnx, &inputs, &logits).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}: {report}", weights.display());
    report
}

fn assert_same_logits(report: &Value, classes: usize) {
    assert_eq!(report["shape"], serde_json::json!([IMAGES, classes]), "{report}");
    assert_eq!(report["single_shape"], serde_json::json!([1, classes]), "the batch dimension is free: {report}");
    let diff = report["max_abs_diff"].as_f64().expect("same shape");
    assert!(diff <= TOLERANCE, "onnxruntime's logits differ from trainer predict's by {diff}");
    assert!(report["single_diff"].as_f64().unwrap() <= TOLERANCE, "{report}");
    assert_eq!(report["inputs"][0][0], "image");
    assert_eq!(report["outputs"][0][0], "logits");
}

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_shipped_cnn_runs_in_onnxruntime_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let weights = root().join("web/cnn.fmw");
    let report = export_and_compare(&weights, dir.path());
    assert_same_logits(&report, 10);
    assert_eq!(report["classes"][9], "Ankle boot");
    let file = WeightsFile::decode(&std::fs::read(&weights).unwrap(), &Device::flex()).unwrap();
    assert!((report["temperature"].as_f64().unwrap() - file.temperature() as f64).abs() < 1e-6, "{report}");
}

#[test]
fn the_report_cnn_and_the_baseline_run_in_onnxruntime_with_the_same_logits() {
    for weights in ["tests/models/1-report-cnn.fmw", "web/baseline.fmw"] {
        let dir = tempfile::tempdir().unwrap();
        assert_same_logits(&export_and_compare(&root().join(weights), dir.path()), 10);
    }
}

/// A compact shape whose pooled head burn computes with unevenly sized cells (14 → 3), which
/// the export writes as a matrix product instead of an `AveragePool`.
#[test]
fn uneven_pooling_runs_in_onnxruntime_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let architecture =
        Architecture::Compact(CompactConfig { stages: Block::plain(vec![vec![8], vec![12]]), pooled_side: 3, hidden: 16, dropout: 0.0 });
    let network = architecture.init(&Device::flex());
    let bytes = WeightsFile::encode(&architecture, &TrainingSummary::default(), network, Precision::F32).unwrap();
    let weights = dir.path().join("uneven.fmw");
    std::fs::write(&weights, bytes).unwrap();
    assert_same_logits(&export_and_compare(&weights, dir.path()), 10);
}

/// Residual blocks: the shortcut as `Add`, a widening one through `Pad`; one starts a stage
/// after the pool.
#[test]
fn residual_blocks_run_in_onnxruntime_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let stages = vec![vec![Block::Conv(8), Block::Residual { residual: 8 }], vec![Block::Residual { residual: 16 }]];
    let architecture = Architecture::Compact(CompactConfig { stages, pooled_side: 3, hidden: 16, dropout: 0.0 });
    let network = architecture.init(&Device::flex());
    let bytes = WeightsFile::encode(&architecture, &TrainingSummary::default(), network, Precision::F32).unwrap();
    let weights = dir.path().join("residual.fmw");
    std::fs::write(&weights, bytes).unwrap();
    assert_same_logits(&export_and_compare(&weights, dir.path()), 10);
}

/// A model with classes of the user's own (as the page fine-tunes one): twelve outputs, named
/// in the ONNX file's metadata.
#[test]
fn own_classes_run_in_onnxruntime_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let file = WeightsFile::decode(&std::fs::read(root().join("web/cnn.fmw")).unwrap(), &device).unwrap();
    let mut photos = fashion_model::LabelledImages::default();
    (0..3).for_each(|i| photos.push(&testkit::new_class::hat(i), 10));
    (0..3).for_each(|i| photos.push(&testkit::new_class::hat(i + 50).iter().rev().copied().collect::<Vec<u8>>(), 11));
    let mut names = fashion_model::classes::fashion_names();
    names.extend(["Hat".to_string(), "Upside-down hat".to_string()]);
    let network = file.network.with_new_classes(12, &photos, &fashion_model::LabelledImages::default(), &names).unwrap();
    let bytes = WeightsFile::encode_with_classes(&file.architecture, &names, &file.summary, network, Precision::F32).unwrap();
    let weights = dir.path().join("own.fmw");
    std::fs::write(&weights, bytes).unwrap();
    let report = export_and_compare(&weights, dir.path());
    assert_same_logits(&report, 12);
    assert_eq!(report["classes"][11], "Upside-down hat", "the class names are not in the ONNX metadata: {report}");
}

#[test]
fn a_damaged_weights_file_gets_a_clear_error_and_no_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(root().join("web/cnn.fmw")).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    let damaged = dir.path().join("damaged.fmw");
    std::fs::write(&damaged, bytes).unwrap();
    let onnx = dir.path().join("out.onnx");
    let out = trainer().arg("export").arg("--onnx").arg(&onnx).arg("--weights").arg(&damaged).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corrupt (checksum mismatch)"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!onnx.exists(), "nothing is written for a damaged input");
}

#[test]
fn predict_as_is_refuses_a_photo_that_is_not_28_by_28() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.png");
    image::GrayImage::new(64, 48).save(&photo).unwrap();
    let out = trainer().args(["predict", "--as-is"]).arg(&photo).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("this one is 64×48"), "{stdout}");
}
