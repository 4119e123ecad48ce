//! Photo files made from Fashion-MNIST test items, and `trainer predict`'s answers on them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A photo on disk and the true class of the item in it.
pub struct Photo {
    pub path: PathBuf,
    pub label: u8,
}

/// Writes `count` varied photos (JPEG and PNG, tinted, off-centre, 4–9× larger) of test
/// items starting at `first`.
pub fn photos(dir: &Path, first: usize, count: usize) -> Result<Vec<Photo>> {
    let data = trainer::data::load(None)?;
    (first..first + count)
        .map(|i| {
            let (bytes, ext) = testkit::varied_photo(data.test.image(i), i);
            let path = dir.join(format!("item-{i:05}.{ext}"));
            std::fs::write(&path, bytes)?;
            Ok(Photo { path, label: data.test.labels[i] })
        })
        .collect()
}

/// Writes `count` photos of test items starting at `first` lying on surfaces (wood, fabric,
/// tiles, grass…, unevenly lit, JPEG: [`testkit::surface_photo`]), picture `i` showing item `i`.
pub fn surface_photos(dir: &Path, first: usize, count: usize) -> Result<Vec<Photo>> {
    let data = trainer::data::load(None)?;
    (first..first + count)
        .map(|i| {
            let (bytes, what) = testkit::surface_photo(Some(data.test.image(i)), i);
            let path = dir.join(format!("surface-{i:05}-{}.jpg", what.surface));
            std::fs::write(&path, bytes)?;
            Ok(Photo { path, label: data.test.labels[i] })
        })
        .collect()
}

/// The 28×28 test images `first..first+count`, as 0..=1 floats.
pub fn test_pixels(first: usize, count: usize) -> Result<Vec<f32>> {
    let data = trainer::data::load(None)?;
    Ok((first..first + count).flat_map(|i| data.test.image(i).iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>()).collect())
}

/// The `trainer` binary built beside this test or benchmark (cargo puts both in the same
/// profile folder: tests in its `deps/`, binaries in it).
fn trainer_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("test binary location")?;
    let profile_dir = if dir.ends_with("deps") { dir.parent().context("test binary location")? } else { dir };
    let trainer = profile_dir.join("trainer");
    if !trainer.exists() {
        bail!("{} is missing: build the workspace first (`cargo xtask test` does)", trainer.display());
    }
    Ok(trainer)
}

/// Writes pictures `0..count` of things that are not garments ([`testkit::not_a_garment`]).
pub fn not_garments(dir: &Path, count: usize) -> Result<Vec<PathBuf>> {
    (0..count)
        .map(|i| {
            let (bytes, kind) = testkit::not_a_garment(i);
            let path = dir.join(format!("not-a-garment-{i:02}-{kind}.png"));
            std::fs::write(&path, bytes)?;
            Ok(path)
        })
        .collect()
}

/// Whether `trainer predict --json` is sure of each file (with the shipped weights); `None`
/// for a file it refuses.
pub fn trainer_sure(paths: &[PathBuf]) -> Result<Vec<Option<bool>>> {
    Ok(trainer_predict(paths)?.iter().map(|v| v["sure"].as_bool()).collect())
}

/// `trainer predict --json` on the files (with the shipped weights, on the CPU): one JSON
/// object per file, an answer or the reason it refused the file.
fn trainer_predict(paths: &[PathBuf]) -> Result<Vec<Value>> {
    let out = std::process::Command::new(trainer_binary()?)
        .args(["predict", "--json", "--backend", "cpu", "--weights"])
        .arg(crate::root().join("web/cnn.fmw"))
        .args(paths)
        .output()?;
    let text = String::from_utf8(out.stdout)?;
    if text.lines().count() != paths.len() {
        bail!("trainer predict answered {} of {} files: {}", text.lines().count(), paths.len(), String::from_utf8_lossy(&out.stderr));
    }
    text.lines().map(|line| Ok(serde_json::from_str(line)?)).collect()
}

/// Labels `trainer predict --json` gives the files (with the shipped weights).
pub fn trainer_labels(paths: &[PathBuf]) -> Result<Vec<u8>> {
    trainer_predict(paths)?.iter().map(|v| v["label"].as_u64().map(|l| l as u8).with_context(|| format!("no label in {v}"))).collect()
}

/// Test images `first..first+count` as the network sees them (0..=1 floats, one row each)
/// and the logits `trainer predict --as-is --weights WEIGHTS` gives them.
pub fn trainer_logits(weights: &Path, dir: &Path, first: usize, count: usize) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let data = trainer::data::load(None)?;
    let images: Vec<Vec<u8>> = (first..first + count).map(|i| data.test.image(i).to_vec()).collect();
    let logits = trainer_logits_as_is(weights, dir, &images)?;
    Ok((images.iter().map(|image| image.iter().map(|&p| p as f32 / 255.0).collect()).collect(), logits))
}

/// The logits `trainer predict --as-is --weights WEIGHTS` gives 28×28 images (gray levels).
pub fn trainer_logits_as_is(weights: &Path, dir: &Path, images: &[Vec<u8>]) -> Result<Vec<Vec<f32>>> {
    let side = fashion_model::IMAGE_SIDE as u32;
    let mut paths = Vec::new();
    for (i, pixels) in images.iter().enumerate() {
        let path = dir.join(format!("as-is-{i}.png"));
        image::GrayImage::from_raw(side, side, pixels.clone()).context("a 28×28 image")?.save(&path)?;
        paths.push(path);
    }
    let out = std::process::Command::new(trainer_binary()?)
        .args(["predict", "--as-is", "--json", "--weights"])
        .arg(weights)
        .args(&paths)
        .output()?;
    if !out.status.success() {
        bail!("trainer predict --as-is failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout)?
        .lines()
        .map(|line| Ok(serde_json::from_value(serde_json::from_str::<Value>(line)?["logits"].clone())?))
        .collect()
}

/// `trainer evaluate --weights FILE --limit N --json`'s accuracy.
pub fn trainer_evaluate(weights: &Path, limit: usize) -> Result<f64> {
    let out = std::process::Command::new(trainer_binary()?)
        .args(["evaluate", "--json", "--backend", "cpu", "--limit", &limit.to_string(), "--weights"])
        .arg(weights)
        .output()?;
    if !out.status.success() {
        bail!("trainer evaluate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    v["accuracy"].as_f64().context("no accuracy in trainer evaluate's output")
}

/// A camera video (Y4M, 640×480, 30 frames a second, looping) of a test item of class
/// `class` held in front of the camera ([`testkit::video`]): the first such item that `trainer
/// predict` also gives `class` on a still of the scene, so the page's answer can be checked.
pub fn camera_video(dir: &Path, class: u8) -> Result<PathBuf> {
    let data = trainer::data::load(None)?;
    let candidates: Vec<usize> = (0..data.test.len()).filter(|&i| data.test.labels[i] == class).take(12).collect();
    let stills = candidates
        .iter()
        .map(|&i| {
            let path = dir.join(format!("camera-still-{i:05}.png"));
            image::DynamicImage::ImageRgb8(testkit::video::camera_scene(data.test.image(i), 640, 480, 0)).save(&path)?;
            Ok(path)
        })
        .collect::<Result<Vec<_>>>()?;
    let labels = trainer_labels(&stills)?;
    let Some(k) = labels.iter().position(|&l| l == class) else { bail!("no test item of class {class} is recognised in a camera still") };
    let frames: Vec<_> = (0..12).map(|f| testkit::video::camera_scene(data.test.image(candidates[k]), 640, 480, f)).collect();
    let path = dir.join(format!("camera-{class}.y4m"));
    std::fs::write(&path, testkit::video::y4m(&frames, 30))?;
    Ok(path)
}

/// Writes photos of hats `range` ([`testkit::new_class::hat_photo`]): a class the shipped
/// model lacks, for teaching it one of the user's own.
pub fn hat_photos(dir: &Path, range: std::ops::Range<usize>) -> Result<Vec<PathBuf>> {
    range
        .map(|i| {
            let (bytes, ext) = testkit::new_class::hat_photo(i);
            let path = dir.join(format!("hat-{i:03}.{ext}"));
            std::fs::write(&path, bytes)?;
            Ok(path)
        })
        .collect()
}

/// A camera video (Y4M, 640×480, looping) of hat `i` held in front of the camera.
pub fn hat_video(dir: &Path, i: usize) -> Result<PathBuf> {
    let hat = testkit::new_class::hat(i);
    let frames: Vec<_> = (0..12).map(|f| testkit::video::camera_scene(&hat, 640, 480, f)).collect();
    let path = dir.join(format!("camera-hat-{i}.y4m"));
    std::fs::write(&path, testkit::video::y4m(&frames, 30))?;
    Ok(path)
}
