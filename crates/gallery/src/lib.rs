//! The page's gallery and teaching set as plain data, and the rules the page follows with
//! them: newest card first, a bounded gallery, which answers are taught and which are
//! classified again after the model changed. No browser and no Leptos here, so that the rules
//! are unit-tested natively with the rest of the workspace (the page crate builds for wasm32
//! only); the page's `state.rs` holds the browser actions and the signals around these values.

use std::borrow::Borrow;

use fashion_engine::Scores;
use fashion_model::{CLASS_NAMES, LabelledImages, NUM_CLASSES};

/// Oldest cards are dropped past this many (their photo's object URL is released), so a long
/// session does not grow without bound.
pub const MAX_CARDS: usize = 200;

/// A classified image.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    /// The 28×28 model input, 0..=1.
    pub pixels: Vec<f32>,
    pub scores: Scores,
    /// The answer of the model used before the last change (fine-tuning, loaded weights,
    /// reset): class and calibrated confidence, shown beside the new one.
    pub before: Option<(usize, f32)>,
}

/// Where a card's answer is.
#[derive(Clone, Debug, PartialEq)]
pub enum CardResult {
    Working,
    Failed(String),
    Done(Classified),
}

impl CardResult {
    /// After the model changed: the input to classify again, and the answer to show as
    /// "before". `None` for a card without an answer.
    pub fn to_reclassify(&self) -> Option<(Vec<f32>, (usize, f32))> {
        match self {
            CardResult::Done(c) => {
                let (label, _, confidence) = describe(&c.scores.cnn);
                Some((c.pixels.clone(), (label, confidence)))
            }
            _ => None,
        }
    }
}

/// Puts `new` cards on top of `cards` (newest first: the last of `new` ends up first) and
/// returns the cards past `max`, for the caller to release.
pub fn add_newest<T>(cards: &mut Vec<T>, new: impl IntoIterator<Item = T>, max: usize) -> Vec<T> {
    for card in new {
        cards.insert(0, card);
    }
    cards.drain(max.min(cards.len())..).collect()
}

/// The fine-tuning set: every answered card the user taught a class, its model input as
/// bytes (the format of the replay and held-out sets). Cards still working, failed or not
/// taught are left out.
pub fn teaching_set<R: Borrow<CardResult>>(cards: impl IntoIterator<Item = (Option<u8>, R)>) -> LabelledImages {
    let mut set = LabelledImages::default();
    for (teach, result) in cards {
        if let (Some(label), CardResult::Done(c)) = (teach, result.borrow()) {
            let image: Vec<u8> = c.pixels.iter().map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
            set.push(&image, label);
        }
    }
    set
}

/// "Sneaker, 97.1%": the class, its name and its probability.
pub fn describe(probs: &[f32; NUM_CLASSES]) -> (usize, &'static str, f32) {
    let label = fashion_model::network::argmax(probs);
    (label, CLASS_NAMES[label], probs[label])
}

#[cfg(test)]
mod tests {
    use fashion_model::{IMAGE_PIXELS, verdict::Verdict};

    use super::*;

    fn done(class: usize, pixel: f32) -> CardResult {
        let mut cnn = [0.01; NUM_CLASSES];
        cnn[class] = 0.91;
        let scores = Scores { cnn, verdict: Verdict::Sure { class, confidence: 0.91 }, baseline: None };
        CardResult::Done(Classified { pixels: vec![pixel; IMAGE_PIXELS], scores, before: None })
    }

    #[test]
    fn new_cards_go_first_and_the_oldest_past_the_limit_are_returned() {
        let mut cards = vec![2, 1];
        let dropped = add_newest(&mut cards, [3, 4, 5], 4);
        assert_eq!(cards, [5, 4, 3, 2]);
        assert_eq!(dropped, [1]);
        assert!(add_newest(&mut cards, [], 4).is_empty());
        assert_eq!(add_newest(&mut cards, [6], 2), [4, 3, 2]);
        assert_eq!(cards, [6, 5]);
    }

    #[test]
    fn the_teaching_set_holds_only_answered_taught_cards_as_bytes() {
        let (taught, untaught, failed, working) =
            (done(7, 0.5), done(1, 1.0), CardResult::Failed("unreadable".into()), CardResult::Working);
        let set = teaching_set([(Some(5), &taught), (None, &untaught), (Some(2), &failed), (Some(3), &working)]);
        assert_eq!(set.labels, [5]);
        // 0.5 × 255 = 127.5 rounds to 128, as the trainer's sets store pixels.
        assert_eq!(set.pixels, vec![128; IMAGE_PIXELS]);
        assert!(teaching_set([(Some(1), &CardResult::Working)]).is_empty());
    }

    #[test]
    fn only_answered_cards_are_classified_again_with_their_answer_as_before() {
        let (pixels, before) = done(8, 0.25).to_reclassify().expect("an answered card");
        assert_eq!(pixels, vec![0.25; IMAGE_PIXELS]);
        assert_eq!(before.0, 8);
        assert!((before.1 - 0.91).abs() < 1e-6);
        assert_eq!(CardResult::Working.to_reclassify(), None);
        assert_eq!(CardResult::Failed("x".into()).to_reclassify(), None);
    }

    #[test]
    fn describe_names_the_most_likely_class() {
        let mut probs = [0.0; NUM_CLASSES];
        probs[9] = 0.6;
        probs[5] = 0.4;
        assert_eq!(describe(&probs), (9, "Ankle boot", 0.6));
    }
}
