//! A card's answer: working, failed, or classified (with the answer before the last change of
//! model, shown beside the new one).

use fashion_model::{CLASS_NAMES, NUM_CLASSES, verdict::Scores};

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

/// "Sneaker, 97.1%": the class, its name and its probability.
pub fn describe(probs: &[f32; NUM_CLASSES]) -> (usize, &'static str, f32) {
    let label = fashion_model::network::argmax(probs);
    (label, CLASS_NAMES[label], probs[label])
}

#[cfg(test)]
pub(crate) mod tests {
    use fashion_model::{IMAGE_PIXELS, verdict::Verdict};

    use super::*;

    /// An answered card: `class` at 0.91, every pixel `pixel`.
    pub fn done(class: usize, pixel: f32) -> CardResult {
        let mut cnn = [0.01; NUM_CLASSES];
        cnn[class] = 0.91;
        let scores = Scores { cnn, verdict: Verdict::Sure { class, confidence: 0.91 }, baseline: None };
        CardResult::Done(Classified { pixels: vec![pixel; IMAGE_PIXELS], scores, before: None })
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
