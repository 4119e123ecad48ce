//! The out-of-distribution test sets are what they claim to be, and the shipped CNN handles
//! them: the accuracy bounds sit well below what `cargo xtask bench-accuracy` measured (the
//! README's table holds the figures).

use burn::prelude::*;
use fashion_model::{
    DecodeLimits, IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES, WeightsFile,
    network::{argmax, images_tensor},
    preprocess_bytes,
};
use testkit::Pose;
use trainer::suite;

fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

fn mirrored(pixels: &[f32]) -> Vec<f32> {
    (0..pixels.len()).map(|i| pixels[(i / IMAGE_SIDE) * IMAGE_SIDE + IMAGE_SIDE - 1 - i % IMAGE_SIDE]).collect()
}

/// A mirrored pose photo comes back from preprocessing as the mirror image of the item, and a
/// rotated one as something clearly different from the upright item.
#[test]
fn pose_photos_show_the_item_mirrored_and_rotated() {
    let data = trainer::data::load(None).expect("Fashion-MNIST is installed by `cargo xtask test`");
    let pre = |bytes: Vec<u8>| preprocess_bytes(&bytes, DecodeLimits::default()).unwrap().pixels;
    let (mut mirror_err, mut upright_err, mut rotated_gap) = (0.0, 0.0, 0.0);
    let n = 40;
    for i in 0..n {
        let item = data.test.image(i);
        let upright: Vec<f32> = item.iter().map(|&p| p as f32 / 255.0).collect();
        let m = pre(testkit::posed_photo(item, i, Pose::Mirror).0);
        mirror_err += mean_abs_diff(&m, &mirrored(&upright));
        upright_err += mean_abs_diff(&m, &upright);
        let r = pre(testkit::posed_photo(item, i, Pose::Rotate(40.0)).0);
        rotated_gap += mean_abs_diff(&r, &upright);
    }
    let (mirror_err, upright_err, rotated_gap) = (mirror_err / n as f32, upright_err / n as f32, rotated_gap / n as f32);
    eprintln!("mirror pose vs mirrored item {mirror_err:.3}, vs upright item {upright_err:.3}; 40° vs upright {rotated_gap:.3}");
    assert!(mirror_err < 0.08, "a mirrored photo is not the mirrored item: {mirror_err}");
    assert!(upright_err > mirror_err * 1.5, "mirroring changed nothing: {upright_err} vs {mirror_err}");
    assert!(rotated_gap > 0.1, "rotation changed little: {rotated_gap}");
}

/// Every pose kind occurs, and the angles cover ±45°.
#[test]
fn pose_items_cycle_through_the_kinds_and_angles() {
    let poses: Vec<Pose> = (0..400).map(Pose::for_item).collect();
    let angles: Vec<f32> = poses.iter().filter_map(|p| if let Pose::Rotate(a) = p { Some(*a) } else { None }).collect();
    assert_eq!(angles.len(), 100);
    assert!(angles.iter().all(|a| a.abs() <= 45.0));
    assert!(angles.iter().any(|&a| a <= -40.0) && angles.iter().any(|&a| a >= 40.0));
    assert_eq!(poses.iter().filter(|p| **p == Pose::Mirror).count(), 100);
    assert!(poses.iter().any(|p| matches!(p, Pose::Perspective { .. })));
}

/// The drawings set: the committed pictures preprocess on every background (a light grey
/// item on the grey background can be refused as "a single flat colour": the suite counts that
/// as a wrong answer), and every class but Pullover and Shirt (no emoji shows them) is present.
#[test]
fn drawings_cover_eight_classes_on_four_backgrounds() {
    let drawings = suite::drawings().unwrap();
    assert_eq!(drawings.len() % testkit::DRAWING_BACKGROUNDS.len(), 0);
    let refused = drawings.iter().filter(|(bytes, _)| preprocess_bytes(bytes, DecodeLimits::default()).is_err()).count();
    eprintln!("{refused} of {} drawings refused by the preprocessing", drawings.len());
    assert!(refused * 50 <= drawings.len(), "{refused} of {} drawings refused", drawings.len());
    let mut classes: Vec<u8> = drawings.iter().map(|d| d.1).collect();
    classes.dedup();
    classes.sort();
    classes.dedup();
    assert_eq!(classes, [0, 1, 3, 4, 5, 7, 8, 9]);
}

/// The shipped CNN on the five sets. Bounds: several points under the measured figures.
#[test]
fn shipped_cnn_recognises_poses_and_drawings() {
    let data = trainer::data::load(None).expect("Fashion-MNIST is installed by `cargo xtask test`");
    let device = Device::flex();
    let weights = std::fs::read(trainer::predict::shipped_weights()).unwrap();
    let file = WeightsFile::decode(&weights, &device).unwrap();
    let sets = suite::build_sets(&data.test, 600, 300).unwrap();
    let scores: Vec<_> = sets.iter().map(|set| suite::score_with_verdicts(&file, set, &device).unwrap()).collect();
    for s in &scores {
        eprintln!("{}: {:.2}%", s.set, 100.0 * s.accuracy);
    }
    let pose = sets.iter().position(|s| s.name == "pose").unwrap();
    let footwear = scores[pose].footwear(&sets[pose]).unwrap();
    eprintln!("pose footwear: {:.2}%", 100.0 * footwear);
    let names: Vec<&str> = scores.iter().map(|s| s.set.as_str()).collect();
    assert_eq!(names, ["Fashion-MNIST test", "photo-style", "pose", "surfaces", "drawings"]);
    for (score, bound) in scores.iter().zip(SHIPPED_BOUNDS) {
        assert!(score.accuracy >= bound, "{}: {:.2}% is under {:.0}%", score.set, 100.0 * score.accuracy, 100.0 * bound);
    }
    assert!(footwear >= POSE_FOOTWEAR_BOUND, "pose footwear {footwear}");
    // Garments on surfaces seldom get a confident wrong answer, and empty surfaces seldom a
    // confident garment.
    let surfaces = &scores[3];
    eprintln!("surfaces: wrong and sure {:.1}%", 100.0 * surfaces.sure_wrong);
    assert!(surfaces.sure_wrong <= 0.15, "surfaces: {:.1}% wrong and sure", 100.0 * surfaces.sure_wrong);
    let empty = suite::empty_surfaces(60).unwrap();
    let sure = suite::sure_share(&file, &empty, &device).unwrap();
    eprintln!("empty surfaces answered with a sure garment: {:.1}%", 100.0 * sure);
    assert!(sure <= 0.15, "{:.1}% of empty surfaces got a sure garment", 100.0 * sure);

    // "Not sure" fires on wrong answers far more than on right ones, rarely on right answers
    // to Fashion-MNIST itself, and on many pictures that are not garments.
    for s in &scores {
        eprintln!(
            "{}: not sure on {:.1}% of right, {:.1}% of wrong answers",
            s.set,
            100.0 * s.unsure_when_right,
            100.0 * s.unsure_when_wrong
        );
        assert!(s.unsure_when_wrong >= 3.0 * s.unsure_when_right, "{}: the rule does not separate right from wrong", s.set);
    }
    assert!(scores[0].unsure_when_right <= 0.03, "doubts {:.1}% of right Fashion-MNIST answers", 100.0 * scores[0].unsure_when_right);
    let others = suite::not_garments(200).unwrap();
    let doubted = suite::doubted_share(&file, &others, &device).unwrap();
    eprintln!("not garments doubted or refused: {:.1}%", 100.0 * doubted);
    assert!(doubted >= 0.4, "only {:.1}% of pictures that are not garments doubted", 100.0 * doubted);
}

/// Fashion-MNIST test, photo-style, pose, surfaces, drawings.
const SHIPPED_BOUNDS: [f64; 5] = [0.91, 0.88, 0.84, 0.78, 0.68];
const POSE_FOOTWEAR_BOUND: f64 = 0.85;

/// The shipped CNN under attack: frozen for the attack it answers the clean images exactly as
/// in inference (batch norm on its running statistics, no dropout), and small worst-case
/// perturbations break many of its answers, more as ε grows.
#[test]
fn attacks_break_the_shipped_cnn() {
    let data = trainer::data::load(None).expect("Fashion-MNIST is installed by `cargo xtask test`");
    let device = Device::flex();
    let file = WeightsFile::decode(&std::fs::read(trainer::predict::shipped_weights()).unwrap(), &device).unwrap();
    let n = 200;
    let pixels: Vec<f32> = data.test.pixels[..n * IMAGE_PIXELS].iter().map(|&p| p as f32 / 255.0).collect();
    let labels = &data.test.labels[..n];
    let logits = file.network.for_inference().forward(images_tensor(pixels.clone(), &device));
    let logits = logits.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let right = logits.chunks(NUM_CLASSES).zip(labels).filter(|(row, l)| argmax(row) == **l as usize).count();
    let r = trainer::robustness::measure(&file.network, &pixels, labels, &device).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.clean, right as f64 / n as f64, "the frozen network answers otherwise than in inference");
    for e in 1..r.pgd.len() {
        assert!(r.fgsm[e] < r.fgsm[e - 1] && r.pgd[e] < r.pgd[e - 1], "a larger ε broke no more answers: {r:?}");
    }
    assert!(r.pgd[r.pgd.len() - 1] < 0.5 * r.clean, "PGD at the largest ε kept most answers: {r:?}");
}
