//! `trainer suite` (`cargo xtask bench-accuracy`): every model against the pictures users
//! actually upload, in one table. Five test sets:
//!
//! - **Fashion-MNIST test**: the 10,000 test images as they are;
//! - **photo-style**: test items made into photos (dark on off-white, upscaled, off-centre,
//!   tinted, JPEG or PNG), then through the app's preprocessing;
//! - **pose**: the same photos mirrored, rotated up to ±45° or seen in perspective;
//! - **surfaces**: test items given colour and shading, lying with a soft shadow on a
//!   floor, a bed, a table or grass (procedural textures and plain surfaces), unevenly lit,
//!   off-centre, JPEG-compressed (`testkit::surface_photo`);
//! - **drawings**: emoji artwork from four openly licensed sets (`tests/ood/drawings`, with
//!   its licences and the symbol → class mapping), on white, grey, beige and transparent
//!   backgrounds.
//!
//! Every picture goes through the same decode and preprocessing as the page and
//! `trainer predict`; a picture it refuses counts as a wrong answer. Prints accuracy per set,
//! footwear accuracy on the pose set, mean confidence of wrong answers, and per-class accuracy;
//! then accuracy under small worst-case perturbations ([`crate::robustness`]).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::Args;
use fashion_model::{
    CLASS_NAMES, DecodeLimits, IMAGE_PIXELS, NUM_CLASSES, WeightsFile,
    calibration::probabilities,
    network::{argmax, images_tensor},
    preprocess_bytes,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::{
    CommonArgs, backend, data,
    robustness::{self, EPSILONS, PGD_STEPS, Robustness},
};

#[derive(Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Weights files to compare [default: every .fmw in tests/models, then web/cnn.fmw]
    #[arg(long)]
    weights: Vec<PathBuf>,
    /// Test items made into photos for the photo-style and pose sets (the first N of the test set).
    #[arg(long, default_value_t = 1000)]
    photos: usize,
    /// Test items photographed lying on surfaces (the first N of the test set).
    #[arg(long, default_value_t = SURFACE_PHOTOS)]
    surfaces: usize,
    /// Test images (the first N) attacked for the robustness table (FGSM and PGD at ε = 0.02,
    /// 0.05, 0.1); 0 leaves the attacks out.
    #[arg(long, default_value_t = 1000)]
    adversarial: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// One test set, preprocessed: `n × 784` pixels in 0..=1 and the true classes.
pub struct TestSet {
    pub name: &'static str,
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
    /// Per image: the preprocessing found its item on a textured surface, where an answer
    /// needs more confidence to be sure (`UnsureRule::judge_input`); empty for sets that are
    /// already 28×28 inputs.
    pub on_surface: Vec<bool>,
    /// True classes of the pictures the preprocessing refused (an item the colour of its
    /// background, say): the user gets an error instead of a class, so they count as wrong.
    pub refused: Vec<u8>,
}

impl TestSet {
    /// Whether image `i`'s item was found on a surface.
    pub fn is_on_surface(&self, i: usize) -> bool {
        self.on_surface.get(i).copied().unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.labels.len() + self.refused.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One model's results on one set.
#[derive(Debug, Clone, Serialize)]
pub struct SetScore {
    pub set: String,
    pub images: usize,
    pub accuracy: f64,
    /// Accuracy per class (`None` where the set has no image of the class).
    pub per_class: Vec<Option<f64>>,
    /// Mean calibrated confidence of the wrong answers.
    pub wrong_confidence: f64,
    /// Share of the right answers that the "not sure" rule doubts (the cost of the rule)…
    pub unsure_when_right: f64,
    /// …and of the wrong answers (its benefit: these are shown as candidates, not as a class).
    pub unsure_when_wrong: f64,
    /// Share of the whole set answered wrong *and* sure: what misleads a user.
    pub sure_wrong: f64,
}

impl SetScore {
    /// Accuracy over the footwear classes (Sandal, Sneaker, Ankle boot).
    pub fn footwear(&self, set: &TestSet) -> Option<f64> {
        let count = |c: usize| set.labels.iter().chain(&set.refused).filter(|&&l| l as usize == c).count();
        let n: usize = [5, 7, 9].into_iter().map(count).sum();
        (n > 0).then(|| [5usize, 7, 9].into_iter().map(|c| self.per_class[c].unwrap_or(0.0) * count(c) as f64).sum::<f64>() / n as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelScores {
    pub model: String,
    pub description: String,
    pub parameters: usize,
    pub multiply_adds: u64,
    pub sets: Vec<SetScore>,
    pub pose_footwear: Option<f64>,
    /// Share of pictures that are not garments ([`testkit::not_a_garment`]) answered "not
    /// sure" or refused by the preprocessing.
    pub not_garments_doubted: f64,
    /// Share of photos of empty surfaces (no item) answered with a confident garment.
    pub empty_surfaces_sure: f64,
    /// Accuracy on the first Fashion-MNIST test images under small worst-case perturbations.
    pub robustness: Option<Robustness>,
}

/// The committed test material under `tests/` (next to the source tree).
pub fn tests_dir() -> PathBuf {
    let local = Path::new("tests");
    if local.join("ood").exists() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// Size of the generated set of pictures that are not garments.
pub const NOT_GARMENTS: usize = 500;
/// Size of the surface set (test items lying on surfaces).
pub const SURFACE_PHOTOS: usize = 1200;
/// Size of the set of photos of empty surfaces.
pub const EMPTY_SURFACES: usize = 300;
/// Empty surfaces are numbered from here, apart from the surface set's pictures.
const EMPTY_SURFACE_OFFSET: usize = 500_000;

pub fn run(args: SuiteArgs) -> Result<ExitCode> {
    let device = backend::select(args.common.backend)?.device;
    let data = data::load(args.common.data_dir.as_deref())?;
    let weights = if args.weights.is_empty() { default_models()? } else { args.weights.clone() };
    let sets = build_sets(&data.test, args.photos, args.surfaces)?;
    let others = not_garments(NOT_GARMENTS)?;
    let empty = empty_surfaces(EMPTY_SURFACES)?;
    let mut results = Vec::new();
    for path in &weights {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
        let file = WeightsFile::decode(&bytes, &device).with_context(|| path.display().to_string())?;
        if file.classes.len() != NUM_CLASSES {
            anyhow::bail!(
                "{} answers with {} classes (the ten and {} of your own); the suite measures models of the ten Fashion-MNIST classes only: use `trainer evaluate` for it",
                path.display(),
                file.classes.len(),
                file.classes.len() - NUM_CLASSES
            );
        }
        let mut scores = score_model(path, &file, &sets, &others, &empty, &device)?;
        if args.adversarial > 0 {
            let n = args.adversarial.min(data.test.len());
            scores.robustness =
                Some(robustness::measure(&file.network, &sets[0].pixels[..n * IMAGE_PIXELS], &sets[0].labels[..n], &device)?);
        }
        results.push(scores);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", table(&results, &sets));
    }
    Ok(ExitCode::SUCCESS)
}

/// Every `.fmw` in `tests/models` (sorted by name), then the shipped CNN.
fn default_models() -> Result<Vec<PathBuf>> {
    let mut found = files_with_extension(&tests_dir().join("models"), "fmw")?;
    found.push(crate::predict::shipped_weights());
    Ok(found)
}

/// The files of `dir` whose extension is `ext`, sorted by name.
fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    Ok(found)
}

/// The five test sets, preprocessed as the app does.
pub fn build_sets(test: &fashion_model::LabelledImages, photos: usize, surfaces: usize) -> Result<Vec<TestSet>> {
    let n = photos.min(test.len());
    let fmnist = TestSet {
        name: "Fashion-MNIST test",
        pixels: test.pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: test.labels.clone(),
        on_surface: Vec::new(),
        refused: Vec::new(),
    };
    let photo_files = (0..n).map(|i| (testkit::varied_photo(test.image(i), i).0, test.labels[i]));
    let pose_files = (0..n).map(|i| (testkit::posed_photo(test.image(i), i, testkit::Pose::for_item(i)).0, test.labels[i]));
    Ok(vec![
        fmnist,
        preprocess_set("photo-style", photo_files)?,
        preprocess_set("pose", pose_files)?,
        surface_set(test, surfaces)?,
        preprocess_set("drawings", drawings()?.into_iter())?,
    ])
}

/// The first `n` test items lying on surfaces, picture `i` showing item `i`.
pub fn surface_set(test: &fashion_model::LabelledImages, n: usize) -> Result<TestSet> {
    let n = n.min(test.len());
    // Generating and preprocessing a photo takes tens of milliseconds: use every core.
    let files: Vec<(Vec<u8>, u8)> =
        (0..n).into_par_iter().map(|i| (testkit::surface_photo(Some(test.image(i)), i).0, test.labels[i])).collect();
    preprocess_set("surfaces", files.into_iter())
}

/// Photos of surfaces with nothing on them (the label is unused).
pub fn empty_surfaces(n: usize) -> Result<TestSet> {
    let files: Vec<(Vec<u8>, u8)> = (0..n).into_par_iter().map(|i| (testkit::surface_photo(None, EMPTY_SURFACE_OFFSET + i).0, 0)).collect();
    preprocess_set("empty surfaces", files.into_iter())
}

/// The committed drawings on each background, labelled by their file name's class prefix.
pub fn drawings() -> Result<Vec<(Vec<u8>, u8)>> {
    let dir = tests_dir().join("ood/drawings/png");
    let mut out = Vec::new();
    for path in files_with_extension(&dir, "png")? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let class: u8 = name
            .split('-')
            .next()
            .and_then(|c| c.parse().ok())
            .filter(|&c: &u8| (c as usize) < NUM_CLASSES)
            .with_context(|| format!("{}: drawing file names start with the class number (0-9) and a dash", path.display()))?;
        let png = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for (_, background) in testkit::DRAWING_BACKGROUNDS {
            out.push((testkit::drawing_on(&png, background), class));
        }
    }
    if out.is_empty() {
        bail!("no drawings in {}", dir.display());
    }
    Ok(out)
}

fn preprocess_set(name: &'static str, files: impl Iterator<Item = (Vec<u8>, u8)>) -> Result<TestSet> {
    let (mut pixels, mut labels, mut on_surface, mut refused) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let files: Vec<(Vec<u8>, u8)> = files.collect();
    let inputs: Vec<_> = files.par_iter().map(|(bytes, _)| preprocess_bytes(bytes, DecodeLimits::default())).collect();
    for (input, (_, label)) in inputs.into_iter().zip(files) {
        match input {
            Ok(image) => {
                pixels.extend_from_slice(&image.pixels);
                labels.push(label);
                on_surface.push(image.on_surface);
            }
            Err(_) => refused.push(label),
        }
    }
    Ok(TestSet { name, pixels, labels, on_surface, refused })
}

/// Raw logits (n × 10) of `file`'s network on a set, in batches.
pub fn set_logits(file: &WeightsFile, set: &TestSet, device: &Device) -> Result<Vec<f32>> {
    let network = file.network.for_inference();
    let mut out = Vec::with_capacity(set.labels.len() * NUM_CLASSES);
    for chunk in set.pixels.chunks(500 * IMAGE_PIXELS) {
        let logits = network.forward(images_tensor(chunk.to_vec(), device));
        out.extend(logits.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?);
    }
    Ok(out)
}

/// Calibrated probabilities of `file`'s network on a set.
pub fn set_probabilities(file: &WeightsFile, set: &TestSet, device: &Device) -> Result<Vec<[f32; NUM_CLASSES]>> {
    Ok(probabilities(&set_logits(file, set, device)?, file.temperature()))
}

/// Scores `file` on `set`: accuracy, per class, and how its "not sure" rule splits the answers.
pub fn score_with_verdicts(file: &WeightsFile, set: &TestSet, device: &Device) -> Result<SetScore> {
    let logits = set_logits(file, set, device)?;
    let (rule, t) = (file.summary.unsure_rule(), file.temperature());
    let mut score = score_set(set, &probabilities(&logits, t));
    let (mut unsure, mut total) = ([0usize; 2], [0usize; 2]);
    for (i, (row, &label)) in logits.chunks_exact(NUM_CLASSES).zip(&set.labels).enumerate() {
        let right = argmax(row) == label as usize;
        total[right as usize] += 1;
        unsure[right as usize] += !rule.judge_input(row, t, set.is_on_surface(i)).is_sure() as usize;
    }
    let share = |k: usize| unsure[k] as f64 / total[k].max(1) as f64;
    (score.unsure_when_right, score.unsure_when_wrong) = (share(1), share(0));
    score.sure_wrong = (total[0] - unsure[0]) as f64 / set.len().max(1) as f64;
    Ok(score)
}

/// Pictures that are not garments (noise, landscapes, digits, text, gradients).
pub fn not_garments(n: usize) -> Result<TestSet> {
    // The label is unused: these have no class.
    preprocess_set("not garments", (0..n).map(|i| (testkit::not_a_garment(i).0, 0)))
}

/// Share of `set` (pictures with no class) that `file` answers with a confident garment.
pub fn sure_share(file: &WeightsFile, set: &TestSet, device: &Device) -> Result<f64> {
    Ok(1.0 - doubted_share(file, set, device)?)
}

/// Share of `set` (pictures with no class) that `file` doubts or the preprocessing refuses.
pub fn doubted_share(file: &WeightsFile, set: &TestSet, device: &Device) -> Result<f64> {
    let logits = set_logits(file, set, device)?;
    let (rule, t) = (file.summary.unsure_rule(), file.temperature());
    let doubted =
        logits.chunks_exact(NUM_CLASSES).enumerate().filter(|(i, row)| !rule.judge_input(row, t, set.is_on_surface(*i)).is_sure()).count();
    Ok((doubted + set.refused.len()) as f64 / set.len().max(1) as f64)
}

pub fn score_set(set: &TestSet, probs: &[[f32; NUM_CLASSES]]) -> SetScore {
    let (mut right, mut total) = ([0usize; NUM_CLASSES], [0usize; NUM_CLASSES]);
    let (mut wrong_conf, mut wrong) = (0.0f64, 0usize);
    for &label in &set.refused {
        total[label as usize] += 1;
    }
    for (p, &label) in probs.iter().zip(&set.labels) {
        let predicted = argmax(p);
        total[label as usize] += 1;
        if predicted == label as usize {
            right[label as usize] += 1;
        } else {
            wrong += 1;
            wrong_conf += p[predicted] as f64;
        }
    }
    SetScore {
        set: set.name.to_string(),
        images: set.len(),
        accuracy: right.iter().sum::<usize>() as f64 / set.len().max(1) as f64,
        per_class: (0..NUM_CLASSES).map(|c| (total[c] > 0).then(|| right[c] as f64 / total[c] as f64)).collect(),
        wrong_confidence: if wrong > 0 { wrong_conf / wrong as f64 } else { 0.0 },
        unsure_when_right: 0.0,
        unsure_when_wrong: 0.0,
        sure_wrong: 0.0,
    }
}

fn score_model(
    path: &Path,
    file: &WeightsFile,
    sets: &[TestSet],
    not_garments: &TestSet,
    empty_surfaces: &TestSet,
    device: &Device,
) -> Result<ModelScores> {
    let mut scores = Vec::new();
    for set in sets {
        scores.push(score_with_verdicts(file, set, device)?);
    }
    let pose_footwear = sets.iter().zip(&scores).find(|(s, _)| s.name == "pose").and_then(|(s, score)| score.footwear(s));
    Ok(ModelScores {
        model: path.display().to_string(),
        description: file.summary.note.clone().unwrap_or_else(|| file.architecture.name().to_string()),
        parameters: file.network.num_params(),
        multiply_adds: file.architecture.multiply_adds(),
        sets: scores,
        pose_footwear,
        not_garments_doubted: doubted_share(file, not_garments, device)?,
        empty_surfaces_sure: sure_share(file, empty_surfaces, device)?,
        robustness: None,
    })
}

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// The comparison table, then per-class accuracy for each set (Markdown).
pub fn table(results: &[ModelScores], sets: &[TestSet]) -> String {
    let mut s = String::from("| model | what | parameters | multiply-adds |");
    for set in sets {
        s += &format!(" {} ({}) |", set.name, set.len());
    }
    s += " pose, footwear | wrong answers' mean confidence (drawings) |\n|---|---|---:|---:|";
    s += &"---:|".repeat(sets.len() + 2);
    s += "\n";
    for r in results {
        s += &format!("| {} | {} | {} | {:.1}M |", r.model, r.description, r.parameters, r.multiply_adds as f64 / 1e6);
        for score in &r.sets {
            s += &format!(" {} |", pct(score.accuracy));
        }
        let drawings = r.sets.iter().find(|x| x.set == "drawings").map(|x| pct(x.wrong_confidence)).unwrap_or_default();
        s += &format!(" {} | {} |\n", r.pose_footwear.map(pct).unwrap_or_default(), drawings);
    }
    s += "\n\"Not sure\" (README, \"The page\"): share of right / wrong answers the page doubts, per set, and of \
          pictures that are not garments (noise, landscapes, digits, text, gradients) doubted or refused:\n\n| model |";
    for set in sets {
        s += &format!(" {} |", set.name);
    }
    s += &format!(" not garments ({NOT_GARMENTS}) | empty surfaces ({EMPTY_SURFACES}): a sure garment |\n|---|");
    s += &"---:|".repeat(sets.len() + 2);
    s += "\n";
    for r in results {
        s += &format!("| {} |", r.model);
        for score in &r.sets {
            s += &format!(" {} / {} |", pct(score.unsure_when_right), pct(score.unsure_when_wrong));
        }
        s += &format!(" {} | {} |\n", pct(r.not_garments_doubted), pct(r.empty_surfaces_sure));
    }
    s += "\nAnswered wrong *and* sure (what misleads a user), share of each set:\n\n| model |";
    for set in sets {
        s += &format!(" {} |", set.name);
    }
    s += "\n|---|";
    s += &"---:|".repeat(sets.len());
    s += "\n";
    for r in results {
        s += &format!("| {} |", r.model);
        for score in &r.sets {
            s += &format!(" {} |", pct(score.sure_wrong));
        }
        s += "\n";
    }
    if let Some(n) = results.iter().find_map(|r| r.robustness.as_ref().map(|x| x.images)) {
        s += &format!(
            "\nUnder attack (`robustness.rs`): accuracy on the first {n} Fashion-MNIST test images when each pixel may move by \
             ε of its range in the direction that raises the loss most: FGSM (one step) and PGD ({PGD_STEPS} steps):\n\n| model | clean |"
        );
        for kind in ["FGSM", "PGD"] {
            for e in EPSILONS {
                s += &format!(" {kind} ε = {e} |");
            }
        }
        s += "\n|---|---:|";
        s += &"---:|".repeat(2 * EPSILONS.len());
        s += "\n";
        for r in results {
            let Some(x) = &r.robustness else { continue };
            s += &format!("| {} | {} |", r.model, pct(x.clean));
            for a in x.fgsm.iter().chain(&x.pgd) {
                s += &format!(" {} |", pct(*a));
            }
            s += "\n";
        }
    }
    for (k, set) in sets.iter().enumerate() {
        s += &format!("\nPer-class accuracy, {}:\n\n| model |", set.name);
        for name in CLASS_NAMES {
            s += &format!(" {name} |");
        }
        s += "\n|---|";
        s += &"---:|".repeat(NUM_CLASSES);
        s += "\n";
        for r in results {
            s += &format!("| {} |", r.model);
            for c in &r.sets[k].per_class {
                s += &format!(" {} |", c.map(pct).unwrap_or_else(|| "–".into()));
            }
            s += "\n";
        }
    }
    s
}
