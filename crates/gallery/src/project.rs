//! The project file ("Save project" / "Open project…"): the user's teaching set and the model
//! in use, in one file that opens again in another browser or on another machine, like
//! Teachable Machine's "Download project as file".
//!
//! It is a zip archive (stored, not compressed: the photos are PNG and JPEG and the weights
//! are floats, which gain nothing), so any unzip tool shows what it holds:
//!
//! - `project.json`: the format name and version, the class names in label order (the ten,
//!   then the user's own, learnt by the model or not yet; from version 3), the model's file name, and per photo its name, label, whether it is held out (only measured on; from
//!   version 2), model input and thumbnail;
//! - `model.fmw`: the model in use, in the trainer's weights format (`trainer evaluate`,
//!   `trainer export` read it);
//! - `photos/NNN.png`: each photo as the network sees it, 28×28 grayscale (lossless);
//! - `photos/NNN.jpg`: a thumbnail of the photo as the user gave it (96 pixels a side at most).
//!
//! Reading checks everything (the archive, the manifest, every photo, the model's framing and
//! checksum) before the page changes anything, and says in a user's words what is wrong.

use std::io::{Cursor, Read, Write};

use fashion_model::{IMAGE_PIXELS, IMAGE_SIDE, WeightsError, WeightsFile, classes::check_names};
use serde::{Deserialize, Serialize};

use crate::MAX_TAUGHT;

/// What a project file is called and how the page's file picker filters it.
pub const EXTENSION: &str = "fmproj";
/// The manifest's `format`: tells a project file from any other zip.
const FORMAT: &str = "fashion-mnist-project";
/// Bump when the meaning of the manifest changes; newer files are refused by number, older
/// ones still open. 2: photos may be held out (version 1 files have none held out). 3: classes
/// of the user's own may follow the ten.
pub const VERSION: u32 = 3;
const MANIFEST: &str = "project.json";
const MODEL: &str = "model.fmw";
/// The largest part a project may hold: well above a model (about 1.4 MB in f32) or a photo.
const MAX_PART_BYTES: u64 = 64 << 20;

/// One photo the user taught.
#[derive(Debug, Clone, PartialEq)]
pub struct TaughtPhoto {
    /// The file name the user gave it.
    pub name: String,
    /// The class the user says it shows.
    pub label: u8,
    /// Held out: only measured on, never learnt from.
    pub held_out: bool,
    /// The network's input, 28×28 gray levels (pixels × 255).
    pub input: Vec<u8>,
    /// A small JPEG of the photo as given, when the browser could make one.
    pub thumbnail: Option<Vec<u8>>,
}

impl TaughtPhoto {
    /// The model input as a 28×28 grayscale PNG.
    pub fn input_png(&self) -> Result<Vec<u8>, ProjectError> {
        input_png(&self.input).map_err(|why| ProjectError::Photo { name: self.name.clone(), why })
    }
}

/// A teaching set and the model in use.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Class names in label order: the model's, then the user's classes it has not learnt yet.
    pub classes: Vec<String>,
    pub photos: Vec<TaughtPhoto>,
    /// The model in use, as a weights file.
    pub model: Vec<u8>,
}

/// Why a project file cannot be opened (or saved). Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("it is not a project file (expected a .{EXTENSION} file saved with “Save project”)")]
    NotAProject,
    #[error("the project file is damaged or cut short ({0}); save it again from the page that made it")]
    Damaged(String),
    #[error(
        "the project file was made by a newer version of this page (project format {found}; this page reads up to {VERSION}); update the page"
    )]
    Newer { found: u32 },
    #[error("the project file's classes are unusable ({0}); save it again from the page that made it")]
    Classes(String),
    #[error("photo “{name}” in the project is unusable: {why}")]
    Photo { name: String, why: String },
    #[error("the project holds {0} photos; a teaching set holds at most {MAX_TAUGHT}")]
    TooManyPhotos(usize),
    #[error("the project's model is unusable: {0}")]
    Model(#[from] WeightsError),
    #[error("the project file could not be written: {0}")]
    Write(String),
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    classes: Vec<String>,
    model: String,
    photos: Vec<PhotoEntry>,
}

#[derive(Serialize, Deserialize)]
struct PhotoEntry {
    name: String,
    label: u8,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    held_out: bool,
    /// The 28×28 input's file in the archive.
    input: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thumbnail: Option<String>,
}

impl Project {
    /// A project of the classes `classes` (in label order).
    pub fn new(classes: Vec<String>, photos: Vec<TaughtPhoto>, model: Vec<u8>) -> Self {
        Self { classes, photos, model }
    }

    /// The project file's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ProjectError> {
        let write = |e: &dyn std::fmt::Display| ProjectError::Write(e.to_string());
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let mut entries = Vec::with_capacity(self.photos.len());
        for (i, photo) in self.photos.iter().enumerate() {
            let input = format!("photos/{i:03}.png");
            let png = photo.input_png()?;
            zip.start_file(input.as_str(), options).map_err(|e| write(&e))?;
            zip.write_all(&png).map_err(|e| write(&e))?;
            let thumbnail = match &photo.thumbnail {
                Some(jpeg) => {
                    let name = format!("photos/{i:03}.jpg");
                    zip.start_file(name.as_str(), options).map_err(|e| write(&e))?;
                    zip.write_all(jpeg).map_err(|e| write(&e))?;
                    Some(name)
                }
                None => None,
            };
            entries.push(PhotoEntry { name: photo.name.clone(), label: photo.label, held_out: photo.held_out, input, thumbnail });
        }
        zip.start_file(MODEL, options).map_err(|e| write(&e))?;
        zip.write_all(&self.model).map_err(|e| write(&e))?;
        let manifest =
            Manifest { format: FORMAT.into(), version: VERSION, classes: self.classes.clone(), model: MODEL.into(), photos: entries };
        zip.start_file(MANIFEST, options).map_err(|e| write(&e))?;
        zip.write_all(&serde_json::to_vec_pretty(&manifest).map_err(|e| write(&e))?).map_err(|e| write(&e))?;
        Ok(zip.finish().map_err(|e| write(&e))?.into_inner())
    }

    /// Reads and checks a project file; nothing is trusted.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProjectError> {
        // A zip starts with a local file header; anything else is not a project at all.
        if !bytes.starts_with(b"PK\x03\x04") {
            return Err(if bytes.starts_with(b"PK") {
                ProjectError::Damaged("not a whole zip archive".into())
            } else {
                ProjectError::NotAProject
            });
        }
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ProjectError::Damaged(e.to_string()))?;
        let manifest = match part(&mut zip, MANIFEST) {
            Err(ProjectError::Damaged(why)) if why.starts_with("no ") => return Err(ProjectError::NotAProject),
            other => other?,
        };
        let manifest: Manifest = match serde_json::from_slice::<serde_json::Value>(&manifest) {
            Ok(value) if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) => return Err(ProjectError::NotAProject),
            Ok(value) if value.get("version").and_then(|v| v.as_u64()).is_some_and(|v| v > VERSION as u64) => {
                return Err(ProjectError::Newer { found: value["version"].as_u64().unwrap_or(0) as u32 });
            }
            Ok(value) => serde_json::from_value(value).map_err(|e| ProjectError::Damaged(format!("{MANIFEST}: {e}")))?,
            Err(e) => return Err(ProjectError::Damaged(format!("{MANIFEST}: {e}"))),
        };
        check_names(&manifest.classes).map_err(|e| ProjectError::Classes(format!("{}: {e}", manifest.classes.join(", "))))?;
        if manifest.photos.len() > MAX_TAUGHT {
            return Err(ProjectError::TooManyPhotos(manifest.photos.len()));
        }
        let mut photos = Vec::with_capacity(manifest.photos.len());
        for entry in manifest.photos {
            let unusable = |why: String| ProjectError::Photo { name: entry.name.clone(), why };
            if entry.label as usize >= manifest.classes.len() {
                return Err(unusable(format!("label {} is not one of the {} classes", entry.label, manifest.classes.len())));
            }
            let input = input_pixels(&part(&mut zip, &entry.input)?).map_err(unusable)?;
            let thumbnail = match &entry.thumbnail {
                Some(name) => {
                    let jpeg = part(&mut zip, name)?;
                    if !jpeg.starts_with(&[0xff, 0xd8, 0xff]) {
                        return Err(unusable("its thumbnail is not a JPEG".into()));
                    }
                    Some(jpeg)
                }
                None => None,
            };
            photos.push(TaughtPhoto { name: entry.name, label: entry.label, held_out: entry.held_out, input, thumbnail });
        }
        let model = part(&mut zip, &manifest.model)?;
        let learnt = WeightsFile::class_names(&model)?;
        if !manifest.classes.starts_with(&learnt) {
            return Err(ProjectError::Classes(format!("the model's classes ({}) do not begin the project's", learnt.join(", "))));
        }
        Ok(Self { classes: manifest.classes, photos, model })
    }
}

/// One part of the archive, within [`MAX_PART_BYTES`].
fn part(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>, ProjectError> {
    let file = match zip.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Err(ProjectError::Damaged(format!("no {name} in it"))),
        Err(e) => return Err(ProjectError::Damaged(format!("{name}: {e}"))),
    };
    if file.size() > MAX_PART_BYTES {
        return Err(ProjectError::Damaged(format!("{name} claims {} bytes", file.size())));
    }
    let mut bytes = Vec::with_capacity(file.size() as usize);
    file.take(MAX_PART_BYTES).read_to_end(&mut bytes).map_err(|e| ProjectError::Damaged(format!("{name}: {e}")))?;
    Ok(bytes)
}

fn input_png(input: &[u8]) -> Result<Vec<u8>, String> {
    let side = IMAGE_SIDE as u32;
    let image = image::GrayImage::from_raw(side, side, input.to_vec()).ok_or_else(|| format!("{} pixels, not 28×28", input.len()))?;
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(png)
}

fn input_pixels(png: &[u8]) -> Result<Vec<u8>, String> {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|e| format!("its 28×28 input is not a readable PNG ({e})"))?;
    if (image.width(), image.height()) != (IMAGE_SIDE as u32, IMAGE_SIDE as u32) {
        return Err(format!("its input is {}×{}, not 28×28", image.width(), image.height()));
    }
    let pixels = image.into_luma8().into_raw();
    debug_assert_eq!(pixels.len(), IMAGE_PIXELS);
    Ok(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid weights file: the baseline's architecture, freshly initialised.
    fn model() -> Vec<u8> {
        let device = burn::prelude::Device::flex();
        let architecture = fashion_model::Architecture::Logistic;
        let network = architecture.init(&device);
        WeightsFile::encode(&architecture, &Default::default(), network, fashion_model::Precision::F32).unwrap()
    }

    fn project() -> Project {
        let jpeg = {
            let mut bytes = Vec::new();
            image::RgbImage::from_pixel(12, 8, image::Rgb([200, 30, 30]))
                .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
                .unwrap();
            bytes
        };
        let photos = vec![
            TaughtPhoto {
                name: "IMG_0001.jpg".into(),
                label: 3,
                held_out: false,
                input: (0..IMAGE_PIXELS).map(|i| (i % 251) as u8).collect(),
                thumbnail: Some(jpeg),
            },
            TaughtPhoto { name: "boot.png".into(), label: 9, held_out: true, input: vec![7; IMAGE_PIXELS], thumbnail: None },
            TaughtPhoto { name: "hat.png".into(), label: 10, held_out: false, input: vec![90; IMAGE_PIXELS], thumbnail: None },
        ];
        // "Hat" is a class of the user's that the model has not learnt yet.
        Project::new(with_own(&["Hat"]), photos, model())
    }

    fn with_own(own: &[&str]) -> Vec<String> {
        let mut names = fashion_model::classes::fashion_names();
        names.extend(own.iter().map(|s| s.to_string()));
        names
    }

    #[test]
    fn a_project_round_trips_exactly() {
        let original = project();
        let bytes = original.encode().unwrap();
        assert_eq!(Project::decode(&bytes).unwrap(), original);
        // An empty teaching set is a project too (the model alone).
        let empty = Project::new(with_own(&[]), Vec::new(), model());
        assert_eq!(Project::decode(&empty.encode().unwrap()).unwrap(), empty);
    }

    #[test]
    fn a_version_1_project_opens_with_nothing_held_out() {
        // Version 1 had no held-out mark: its manifest says version 1 and no photo has one.
        let bytes = project().encode().unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let mut text = String::new();
        zip.by_name(MANIFEST).unwrap().read_to_string(&mut text).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["photos"][1]["held_out"], true, "version 2 writes the mark");
        assert!(value["photos"][0].get("held_out").is_none(), "and only where it is set");
        value["version"] = 1.into();
        value["photos"][1].as_object_mut().unwrap().remove("held_out");
        let opened = Project::decode(&with_part(MANIFEST, value.to_string().as_bytes())).unwrap();
        assert_eq!(opened.photos.len(), 3);
        assert!(opened.photos.iter().all(|p| !p.held_out));
    }

    #[test]
    fn any_unzip_tool_sees_the_parts() {
        let bytes = project().encode().unwrap();
        let zip = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|name| name.unwrap().to_string()).collect();
        names.sort();
        assert_eq!(names, ["model.fmw", "photos/000.jpg", "photos/000.png", "photos/001.png", "photos/002.png", "project.json"]);
    }

    fn message(bytes: &[u8]) -> String {
        Project::decode(bytes).expect_err("refused").to_string()
    }

    #[test]
    fn foreign_files_are_told_apart_from_damaged_projects() {
        assert!(message(b"").contains("not a project file"));
        assert!(message(&model()).contains("not a project file"), "a weights file is not a project");
        assert!(message(b"\x89PNG\r\n\x1a\n....").contains("not a project file"));
        // Another zip: no manifest, or a manifest of something else.
        let mut other = zip::ZipWriter::new(Cursor::new(Vec::new()));
        other.start_file("readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
        other.write_all(b"hello").unwrap();
        assert!(message(&other.finish().unwrap().into_inner()).contains("not a project file"));

        let bytes = project().encode().unwrap();
        for cut in [bytes.len() / 3, bytes.len() - 30] {
            let m = message(&bytes[..cut]);
            assert!(m.contains("damaged or cut short"), "cut at {cut}: {m}");
        }
    }

    /// Rewrites one part of a valid project.
    fn with_part(name: &str, contents: &[u8]) -> Vec<u8> {
        let bytes = project().encode().unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..zip.len() {
            let mut file = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            let part = file.name().unwrap().to_string();
            out.start_file(part.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(if part == name { contents } else { &data }).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn the_models_classes_must_begin_the_projects() {
        let device = burn::prelude::Device::flex();
        let architecture = fashion_model::Architecture::Logistic;
        let mut photo = fashion_model::LabelledImages::default();
        photo.push(&[50; IMAGE_PIXELS], 10);
        let network = architecture.init(&device).with_new_classes(11, &photo, &Default::default(), &[]).unwrap();
        let cap = WeightsFile::encode_with_classes(
            &architecture,
            &with_own(&["Cap"]),
            &Default::default(),
            network,
            fashion_model::Precision::F32,
        )
        .unwrap();
        let bytes = Project { model: cap, ..project() }.encode().unwrap();
        let e = Project::decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("do not begin"), "{e}");
    }

    #[test]
    fn every_bad_part_is_named() {
        let manifest = |edit: &dyn Fn(&mut serde_json::Value)| {
            let bytes = project().encode().unwrap();
            let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
            let mut text = String::new();
            zip.by_name(MANIFEST).unwrap().read_to_string(&mut text).unwrap();
            let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
            edit(&mut value);
            message(&with_part(MANIFEST, value.to_string().as_bytes()))
        };
        assert!(manifest(&|v| v["version"] = (VERSION + 1).into()).contains("newer version of this page"));
        assert!(manifest(&|v| v["classes"][0] = "Cap".into()).contains("classes are unusable"));
        assert!(manifest(&|v| v["classes"][10] = "coat".into()).contains("already a class called “coat”"));
        assert!(manifest(&|v| v["photos"][1]["label"] = 11.into()).contains("photo “boot.png” in the project is unusable: label 11"));
        assert!(manifest(&|v| v["photos"][0]["input"] = "photos/nowhere.png".into()).contains("no photos/nowhere.png in it"));
        assert!(manifest(&|v| v["photos"] = "many".into()).contains("damaged or cut short"));
        let many = manifest(&|v| {
            let one = v["photos"][1].clone();
            v["photos"] = serde_json::Value::Array(vec![one; MAX_TAUGHT + 1]);
        });
        assert!(many.contains("at most 1000"), "{many}");

        assert!(
            message(&with_part("photos/001.png", b"not a png"))
                .contains("“boot.png” in the project is unusable: its 28×28 input is not a readable PNG")
        );
        let mut big = Vec::new();
        image::GrayImage::new(29, 28).write_to(&mut Cursor::new(&mut big), image::ImageFormat::Png).unwrap();
        assert!(message(&with_part("photos/001.png", &big)).contains("its input is 29×28"));
        assert!(message(&with_part("photos/000.jpg", b"GIF89a")).contains("thumbnail is not a JPEG"));

        let mut model = model();
        let n = model.len();
        model[n / 2] ^= 1;
        assert!(message(&with_part("model.fmw", &model)).contains("the project's model is unusable: weights file is corrupt"));
    }
}
