//! Development harness for finding garments on surfaces: preprocesses surface photos of a
//! *development* range of test items (pictures numbered apart from `trainer suite`'s surface
//! set, so the reported figures are not the ones tuned on) and prints the shipped CNN's
//! accuracy and confident-wrong share per surface family and contrast. Optionally writes a
//! contact sheet of photos and the 28×28 inputs made from them.
//!
//!     cargo run --release -p trainer --example surface_lab -- [N] [sheet.png] [--weights FILE]

use burn::prelude::*;
use fashion_model::{
    DecodeLimits, IMAGE_PIXELS, NUM_CLASSES, WeightsFile,
    network::{argmax, images_tensor},
    preprocess_bytes,
};
use std::collections::BTreeMap;

/// Development pictures are numbered from here (the suite's start at 0).
const DEV_OFFSET: usize = 1_000_000;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Another network than the shipped one (the preprocessing is the page's either way).
    let weights = match args.iter().position(|a| a == "--weights") {
        Some(i) if i + 1 < args.len() => {
            let path = std::path::PathBuf::from(args.remove(i + 1));
            args.remove(i);
            path
        }
        Some(_) => anyhow::bail!("--weights needs a file"),
        None => trainer::predict::shipped_weights(),
    };
    let n: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let device = Device::flex();
    let data = trainer::data::load(None)?;
    let file = WeightsFile::decode(&std::fs::read(&weights)?, &device)?;
    let network = file.network.for_inference();
    let (rule, t) = (file.summary.unsure_rule(), file.temperature());
    let mut groups: BTreeMap<String, [usize; 4]> = BTreeMap::new(); // right, sure-wrong, refused, total
    let mut sheet_rows = Vec::new();
    let start = std::time::Instant::now();
    let mut inputs = Vec::new();
    for k in 0..n {
        let item = 5000 + k;
        let (bytes, what) = testkit::surface_photo(Some(data.test.image(item)), DEV_OFFSET + k);
        let label = data.test.labels[item] as usize;
        let keys = [format!("surface {}", what.surface), format!("contrast {:?}", what.contrast), "all".to_string()];
        match preprocess_bytes(&bytes, DecodeLimits::default()) {
            Ok(p) => {
                let truth: Vec<f32> = data.test.image(item).iter().map(|&v| v as f32 / 255.0).collect();
                let overlap = testkit::lit_overlap(&p.pixels, &truth);
                inputs.push((p.pixels, label, keys, bytes, p.to_u8(), p.on_surface, overlap));
            }
            Err(e) => {
                for key in keys {
                    let g = groups.entry(key).or_default();
                    g[2] += 1;
                    g[3] += 1;
                }
                eprintln!("picture {k}: {e}");
                if sheet_rows.len() < 24 {
                    sheet_rows.push((bytes, None));
                }
            }
        }
    }
    let prep = start.elapsed();
    let mut surface_answers: Vec<(f32, bool)> = Vec::new();
    let mut outcomes: Vec<(bool, bool)> = Vec::new(); // right, shape found (overlap ≥ 0.6)
    for chunk in inputs.chunks(256) {
        let pixels: Vec<f32> = chunk.iter().flat_map(|(p, ..)| p.iter().copied()).collect();
        let logits = network.forward(images_tensor(pixels, &device)).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        for ((_, label, keys, bytes, input, on_surface, overlap), row) in chunk.iter().zip(logits.chunks_exact(NUM_CLASSES)) {
            let right = argmax(row) == *label;
            if !right && sheet_rows.len() < 30 {
                sheet_rows.push((bytes.clone(), Some(*input)));
            }
            let sure = rule.judge_input(row, t, *on_surface).is_sure();
            outcomes.push((right, *overlap >= 0.6));
            if *on_surface {
                let confidence = fashion_model::calibration::probabilities(row, t)[0].iter().copied().fold(0.0f32, f32::max);
                surface_answers.push((confidence, right));
            }
            for key in keys {
                let g = groups.entry(key.clone()).or_default();
                g[0] += right as usize;
                g[1] += (!right && sure) as usize;
                g[3] += 1;
            }
        }
    }
    println!("{n} pictures, preprocessing {:.1} ms each", prep.as_secs_f64() * 1e3 / n as f64);
    for (key, [right, sure_wrong, refused, total]) in &groups {
        println!(
            "{key:<26} {total:>5}  right {:5.1}%  sure-wrong {:5.1}%  refused {:5.1}%",
            100.0 * *right as f64 / *total as f64,
            100.0 * *sure_wrong as f64 / *total as f64,
            100.0 * *refused as f64 / *total as f64
        );
    }
    // Where the errors come from: a shape that is not the item's (the segmentation), or the
    // item's shape misread (the network).
    for (right, shape) in [(true, true), (true, false), (false, true), (false, false)] {
        let count = outcomes.iter().filter(|o| **o == (right, shape)).count();
        println!(
            "{} with the item's shape {}: {count}",
            if right { "right" } else { "wrong" },
            if shape { "found (overlap ≥ 0.6)" } else { "not found" }
        );
    }
    // The confidence a surface-path answer needs: what each threshold leaves wrong and sure,
    // and what share of the right answers it doubts.
    let found = surface_answers.len().max(1) as f64;
    for min in [0.5f32, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95] {
        let wrong_sure = surface_answers.iter().filter(|(c, r)| !r && *c >= min).count();
        let right_doubted = surface_answers.iter().filter(|(c, r)| *r && *c < min).count();
        let right = surface_answers.iter().filter(|(_, r)| *r).count().max(1);
        println!(
            "surface path, confidence ≥ {min:.2}: wrong and sure {:5.1}% of {} answers, right but doubted {:5.1}% of the right",
            100.0 * wrong_sure as f64 / found,
            surface_answers.len(),
            100.0 * right_doubted as f64 / right as f64
        );
    }
    // Empty surfaces: how many get a confident garment.
    let empties = n / 3;
    let (mut sure, mut refused) = (0, 0);
    for k in 0..empties {
        let (bytes, _) = testkit::surface_photo(None, DEV_OFFSET + 500_000 + k);
        match preprocess_bytes(&bytes, DecodeLimits::default()) {
            Ok(p) => {
                let logits =
                    network.forward(images_tensor(p.pixels.to_vec(), &device)).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                sure += rule.judge_input(&logits, t, p.on_surface).is_sure() as usize;
            }
            Err(_) => refused += 1,
        }
    }
    // Pictures that are not garments, per kind: doubted or refused, and how often the surface
    // path took them.
    let mut kinds: BTreeMap<&str, [usize; 4]> = BTreeMap::new(); // doubted, refused, on surface, total
    for i in 0..500 {
        let (bytes, kind) = testkit::not_a_garment(i);
        let k = kinds.entry(kind).or_default();
        k[3] += 1;
        match preprocess_bytes(&bytes, DecodeLimits::default()) {
            Ok(p) => {
                let logits =
                    network.forward(images_tensor(p.pixels.to_vec(), &device)).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
                k[0] += !rule.judge_input(&logits, t, p.on_surface).is_sure() as usize;
                k[2] += p.on_surface as usize;
            }
            Err(_) => k[1] += 1,
        }
    }
    for (kind, [doubted, refused, surface, total]) in kinds {
        println!("not a garment, {kind:<10} doubted {doubted:>3}, refused {refused:>3}, surface path {surface:>3} of {total}");
    }
    // A 12-megapixel phone photo of a garment on a surface: decode + preprocessing time.
    let on_surface = (0..)
        .map(|i| testkit::surface_photo(Some(data.test.image(i)), i).0)
        .find(|bytes| preprocess_bytes(bytes, DecodeLimits::default()).is_ok_and(|p| p.on_surface))
        .expect("some surface photo is found on its surface");
    let small = image::load_from_memory(&on_surface)?;
    let big = small.resize_exact(4000, 3000, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    big.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)?;
    let started = std::time::Instant::now();
    let decoded = fashion_model::preprocess::decode(&jpeg, DecodeLimits::default())?;
    let decode_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = std::time::Instant::now();
    let _ = fashion_model::preprocess_image(&decoded);
    println!("4000×3000 JPEG: decode {decode_ms:.0} ms, preprocessing {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let work = decoded.thumbnail(1024, 1024);
    let started = std::time::Instant::now();
    let _ = fashion_model::preprocess_image(&work);
    println!("  the same photo at 1,024 px (no shrink): preprocessing {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let started = std::time::Instant::now();
    let big_result = preprocess_bytes(&jpeg, DecodeLimits::default());
    println!(
        "4000×3000 JPEG on a surface: decode + preprocessing {:.0} ms ({})",
        started.elapsed().as_secs_f64() * 1e3,
        if big_result.is_ok_and(|p| p.on_surface) { "found on the surface" } else { "not found on the surface" }
    );
    println!(
        "empty surfaces {empties}: confident garment {:.1}%, refused {:.1}%",
        100.0 * sure as f64 / empties as f64,
        100.0 * refused as f64 / empties as f64
    );
    if let Some(path) = args.get(1) {
        write_sheet(path, &sheet_rows)?;
    }
    Ok(())
}

/// Photos (scaled to 112 px tall) beside the 28×28 inputs (4× nearest), six to a row.
fn write_sheet(path: &str, rows: &[(Vec<u8>, Option<[u8; IMAGE_PIXELS]>)]) -> anyhow::Result<()> {
    let cell = 112u32;
    let mut sheet = image::RgbImage::from_pixel(cell * 2 * 6, cell * rows.len().div_ceil(6) as u32, image::Rgb([255, 0, 255]));
    for (k, (bytes, input)) in rows.iter().enumerate() {
        let (x0, y0) = ((k % 6) as u32 * cell * 2, (k / 6) as u32 * cell);
        let photo = image::load_from_memory(bytes)?.resize_exact(cell, cell, image::imageops::FilterType::Triangle).to_rgb8();
        image::imageops::replace(&mut sheet, &photo, x0 as i64, y0 as i64);
        if let Some(input) = input {
            for y in 0..cell {
                for x in 0..cell {
                    let v = input[(y / 4 * 28 + x / 4) as usize];
                    sheet.put_pixel(x0 + cell + x, y0 + y, image::Rgb([v, v, v]));
                }
            }
        }
    }
    sheet.save(path)?;
    Ok(())
}
