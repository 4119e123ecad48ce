//! The weights format: round trip, and a clear error (never a panic) for every kind of bad file.

use burn::prelude::*;
use fashion_model::{
    Architecture, Block, CnnConfig, CompactConfig, IMAGE_PIXELS, LabelledImages, Precision, TrainingSummary, WeightsError, WeightsFile,
    classes::{ClassNameError, fashion_names},
    network::images_tensor,
    weights::FORMAT_VERSION,
};

/// The ten Fashion-MNIST class names followed by `own`, as a header's JSON list.
fn own_classes_json(own: &[&str]) -> String {
    let mut names = fashion_names();
    names.extend(own.iter().map(|s| s.to_string()));
    serde_json::to_string(&names).unwrap()
}

#[test]
fn own_classes_travel_in_the_file_and_can_be_renamed_without_retraining() {
    let device = Device::flex();
    let arch = small_compact();
    let mut photos = LabelledImages::default();
    photos.push(&[90; IMAGE_PIXELS], 10);
    photos.push(&[200; IMAGE_PIXELS], 11);
    let mut names = fashion_names();
    names.extend(["Hat".to_string(), "Scarf".to_string()]);
    let net = arch.init(&device).with_new_classes(12, &photos, &LabelledImages::default(), &names).unwrap();
    let input = images_tensor(photos.to_f32(), &device);
    let logits = net.forward(input.clone()).into_data().try_to_vec::<f32>().unwrap();
    let bytes = WeightsFile::encode_with_classes(&arch, &names, &TrainingSummary::default(), net.clone(), Precision::F32).unwrap();
    assert_eq!(WeightsFile::class_names(&bytes).unwrap(), names);
    let file = WeightsFile::decode(&bytes, &device).unwrap();
    assert_eq!(file.classes, names);
    assert_eq!(file.network.classes(), 12);
    assert_eq!(file.network.forward(input.clone()).into_data().try_to_vec::<f32>().unwrap(), logits);

    // Renaming rewrites the header only: same answers, new names.
    names[11] = "Woolly scarf".into();
    let renamed = WeightsFile::renamed(&bytes, &names).unwrap();
    let file = WeightsFile::decode(&renamed, &device).unwrap();
    assert_eq!(file.classes[11], "Woolly scarf");
    assert_eq!(file.network.forward(input).into_data().try_to_vec::<f32>().unwrap(), logits);
    // A duplicate, a built-in renamed or a different count is refused.
    names[11] = "hat".into();
    assert!(matches!(WeightsFile::renamed(&bytes, &names), Err(WeightsError::Classes(ClassNameError::Duplicate(_)))));
    let mut renamed_builtin = fashion_names();
    renamed_builtin[0] = "Tee".into();
    renamed_builtin.extend(["Hat".to_string(), "Scarf".to_string()]);
    assert!(matches!(WeightsFile::renamed(&bytes, &renamed_builtin), Err(WeightsError::Classes(ClassNameError::BuiltIn))));
    assert!(matches!(WeightsFile::renamed(&bytes, &fashion_names()), Err(WeightsError::Mismatch { .. })));
    // Names that do not match the output layer are refused when writing, too.
    let e = WeightsFile::encode(&arch, &TrainingSummary::default(), net, Precision::F32).unwrap_err();
    assert!(matches!(e, WeightsError::Mismatch { .. }), "{e}");
    // The baseline knows only the ten.
    let baseline = Architecture::Logistic.init(&device).with_new_classes(11, &photos, &LabelledImages::default(), &names).unwrap();
    let mut eleven = fashion_names();
    eleven.push("Hat".into());
    let bytes =
        WeightsFile::encode_with_classes(&Architecture::Logistic, &eleven, &TrainingSummary::default(), baseline, Precision::F32).unwrap();
    let e = WeightsFile::decode(&bytes, &device).unwrap_err();
    assert!(matches!(e, WeightsError::OnlyTheTen { found: 11 }), "{e}");
}

fn small_cnn() -> Architecture {
    Architecture::Cnn(CnnConfig { channels: [4, 8, 8], hidden: 16, dropout: 0.5, batch_norm: true })
}

fn small_compact() -> Architecture {
    Architecture::Compact(CompactConfig {
        stages: Block::plain(vec![vec![4], vec![8], vec![8, 8]]),
        pooled_side: 1,
        hidden: 16,
        dropout: 0.3,
    })
}

/// Residual blocks: one widening at the start of a stage, one at the same width.
fn small_residual() -> Architecture {
    let stages = vec![vec![Block::Conv(4), Block::Residual { residual: 4 }], vec![Block::Residual { residual: 8 }]];
    Architecture::Compact(CompactConfig { stages, pooled_side: 3, hidden: 16, dropout: 0.3 })
}

fn encoded(arch: &Architecture) -> (Vec<u8>, Vec<f32>) {
    let device = Device::flex();
    let net = arch.init(&device);
    let input = images_tensor((0..2 * 784).map(|i| (i % 13) as f32 / 13.0).collect(), &device);
    let logits = net.forward(input).into_data().try_to_vec::<f32>().unwrap();
    let summary = TrainingSummary { test_accuracy: Some(0.91), note: Some("test".into()), temperature: Some(1.7), ..Default::default() };
    (WeightsFile::encode(arch, &summary, net, Precision::F32).unwrap(), logits)
}

#[test]
fn round_trip_keeps_architecture_summary_and_outputs() {
    for arch in [small_cnn(), small_compact(), small_residual(), Architecture::Logistic] {
        let (bytes, logits) = encoded(&arch);
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), FORMAT_VERSION);
        let device = Device::flex();
        let file = WeightsFile::decode(&bytes, &device).unwrap();
        assert_eq!(file.architecture, arch);
        assert_eq!(file.summary.test_accuracy, Some(0.91));
        assert_eq!(file.temperature(), 1.7);
        assert_eq!(file.classes[9], "Ankle boot");
        let input = images_tensor((0..2 * 784).map(|i| (i % 13) as f32 / 13.0).collect(), &device);
        let again = file.network.forward(input).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(logits, again);
    }
}

#[test]
fn bad_files_give_specific_errors() {
    let device = Device::flex();
    let (good, _) = encoded(&small_cnn());

    let err = |bytes: &[u8]| WeightsFile::decode(bytes, &device).unwrap_err();

    assert!(matches!(err(b""), WeightsError::NotAWeightsFile));
    assert!(matches!(err(b"PK\x03\x04 definitely a zip file"), WeightsError::NotAWeightsFile));
    let random: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert!(matches!(err(&random), WeightsError::NotAWeightsFile));

    for cut in [10, 20, good.len() / 2, good.len() - 1] {
        assert!(matches!(err(&good[..cut]), WeightsError::Truncated(_)), "cut at {cut}: {}", err(&good[..cut]));
    }

    let mut other_version = good.clone();
    other_version[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let e = err(&other_version);
    assert!(matches!(e, WeightsError::UnsupportedVersion { found, .. } if found == FORMAT_VERSION + 1));
    assert!(e.to_string().contains("version"));

    let mut flipped = good.clone();
    let mid = good.len() - 100;
    flipped[mid] ^= 0x55;
    assert!(matches!(err(&flipped), WeightsError::Checksum));
}

/// Re-frames a parameter block under a different header (valid checksum), as a file from
/// another build or a hand-edited file would be.
fn reframe(good: &[u8], header_json: &str, mutate_params: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let header_len = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let p_at = 16 + header_len;
    let p_len = u64::from_le_bytes(good[p_at..p_at + 8].try_into().unwrap()) as usize;
    let mut params = good[p_at + 8..p_at + 8 + p_len].to_vec();
    mutate_params(&mut params);
    let mut out = good[..12].to_vec();
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(header_json.as_bytes());
    out.extend_from_slice(&(params.len() as u64).to_le_bytes());
    out.extend_from_slice(&params);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

const CLASSES: &str = r#"["T-shirt/top","Trouser","Pullover","Dress","Coat","Sandal","Shirt","Sneaker","Bag","Ankle boot"]"#;

#[test]
fn another_architecture_or_nan_weights_are_refused() {
    let device = Device::flex();
    let (good, _) = encoded(&small_cnn());

    // CNN parameters under a header claiming logistic regression.
    let lying = reframe(&good, &format!(r#"{{"architecture":{{"kind":"logistic"}},"classes":{CLASSES}}}"#), |_| {});
    let e = WeightsFile::decode(&lying, &device).unwrap_err();
    assert!(matches!(e, WeightsError::Mismatch { .. }), "{e}");

    // The report's CNN header over the small CNN's parameters: shapes differ.
    let report = serde_json::to_string(&Architecture::Cnn(CnnConfig::report())).unwrap();
    let wrong_shape = reframe(&good, &format!(r#"{{"architecture":{report},"classes":{CLASSES}}}"#), |_| {});
    assert!(matches!(WeightsFile::decode(&wrong_shape, &device).unwrap_err(), WeightsError::Mismatch { .. }));

    // A CNN file where a logistic model was asked for.
    let e = WeightsFile::decode_expecting(&good, &device, false).unwrap_err();
    assert!(matches!(e, WeightsError::WrongArchitecture { .. }), "{e}");

    let small = serde_json::to_string(&small_cnn()).unwrap();
    let nine_classes = reframe(&good, &format!(r#"{{"architecture":{small},"classes":["a","b","c","d","e","f","g","h","i"]}}"#), |_| {});
    let e = WeightsFile::decode(&nine_classes, &device).unwrap_err();
    assert!(matches!(e, WeightsError::Classes(ClassNameError::BuiltIn)), "{e}");

    // Eleven names over an output layer of ten rows.
    let eleven = reframe(&good, &format!(r#"{{"architecture":{small},"classes":{}}}"#, own_classes_json(&["Hat"])), |_| {});
    assert!(matches!(WeightsFile::decode(&eleven, &device).unwrap_err(), WeightsError::Mismatch { .. }));

    let garbage_header = reframe(&good, "{not json", |_| {});
    assert!(matches!(WeightsFile::decode(&garbage_header, &device).unwrap_err(), WeightsError::Header(_)));

    // Overwrite the last float of the parameter block (the end of the last tensor) with NaN.
    let nan = reframe(&good, &format!(r#"{{"architecture":{small},"classes":{CLASSES}}}"#), |p| {
        let n = p.len();
        p[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let e = WeightsFile::decode(&nan, &device).unwrap_err();
    assert!(matches!(e, WeightsError::NonFinite(_)), "{e}");
}

/// A weights file committed under `tests/models`, checked to be of format `version`, decoded.
fn committed_file(name: &str, version: u32) -> WeightsFile {
    let path = format!("{}/../../tests/models/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), version, "{name} is a version {version} file");
    WeightsFile::decode(&bytes, &Device::flex()).unwrap()
}

/// The CNN shipped before format version 2 (kept in tests/models for the accuracy table) still
/// loads, with no temperature (1), and still classifies.
#[test]
fn version_1_files_still_load() {
    let file = committed_file("2-shipped-v1-cnn-bn.fmw", 1);
    assert_eq!(file.architecture, Architecture::Cnn(CnnConfig::shipped()));
    assert_eq!(file.temperature(), 1.0);
    assert!(file.summary.test_accuracy.unwrap() > 0.9);
}

/// A header whose architecture cannot be built is refused with a message, not a panic.
#[test]
fn an_impossible_compact_shape_is_refused() {
    let (good, _) = encoded(&small_compact());
    // Signature (8 bytes), version (4), header length (4), then the header.
    let header_start = 16;
    let header_len = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&good[header_start..header_start + header_len]).unwrap();
    let bad_header = header.replace("\"pooled_side\":1", "\"pooled_side\":9");
    assert_ne!(bad_header, header);
    let mut bad = good[..12].to_vec();
    bad.extend_from_slice(&(bad_header.len() as u32).to_le_bytes());
    bad.extend_from_slice(bad_header.as_bytes());
    bad.extend_from_slice(&good[16 + header_len..good.len() - 4]);
    let crc = crc32fast::hash(&bad);
    bad.extend_from_slice(&crc.to_le_bytes());
    let e = WeightsFile::decode(&bad, &Device::flex()).unwrap_err();
    assert!(matches!(e, WeightsError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("pooled side 9"), "{e}");

    // A residual block that narrows its input has no shortcut to add.
    let (good, _) = encoded(&small_residual());
    let header_len = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&good[16..16 + header_len]).unwrap();
    let narrowing = header.replace(r#"[4,{"residual":4}]"#, r#"[8,{"residual":4}]"#);
    assert_ne!(narrowing, header);
    let e = WeightsFile::decode(&reframe(&good, &narrowing, |_| {}), &Device::flex()).unwrap_err();
    assert!(matches!(e, WeightsError::Mismatch { .. }) && e.to_string().contains("narrows 8 channels to 4"), "{e}");
}

/// Half precision halves the parameter block and moves the outputs by rounding only.
#[test]
fn half_precision_halves_the_file_and_keeps_the_outputs() {
    let device = Device::flex();
    // The shipped shape: in a tiny network the per-tensor alignment of the format dominates.
    let arch = Architecture::Compact(CompactConfig::shipped());
    let net = arch.init(&device);
    let input = images_tensor((0..2 * 784).map(|i| (i % 13) as f32 / 13.0).collect(), &device);
    let logits = net.forward(input.clone()).into_data().try_to_vec::<f32>().unwrap();
    let summary = TrainingSummary { temperature: Some(0.8), ..Default::default() };
    let full = WeightsFile::encode(&arch, &summary, net.clone(), Precision::F32).unwrap();
    let half = WeightsFile::encode(&arch, &summary, net, Precision::F16).unwrap();
    assert!(half.len() < full.len() * 55 / 100, "f16 {} bytes vs f32 {}", half.len(), full.len());
    let file = WeightsFile::decode(&half, &device).unwrap();
    assert_eq!((file.architecture.clone(), file.temperature()), (arch, 0.8));
    let again = file.network.forward(input).into_data().try_to_vec::<f32>().unwrap();
    let scale = logits.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for (a, b) in logits.iter().zip(&again) {
        assert!((a - b).abs() <= 1e-2 * scale, "{a} vs {b}");
    }
    assert_ne!(logits, again, "rounding to f16 changes something");
}

/// Files of format version 2 (f32 parameters, compact CNN) still load.
#[test]
fn version_2_files_still_load() {
    let file = committed_file("3-ablation-6-all.fmw", 2);
    assert!(matches!(file.architecture, Architecture::Compact(_)));
    assert!(file.temperature() != 1.0);
}
