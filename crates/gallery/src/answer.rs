//! A card's answer: working, failed, or classified (with the answer before the last change of
//! model, shown beside the new one).

use fashion_model::verdict::Scores;

/// A classified image.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    /// The 28×28 model input, 0..=1.
    pub pixels: Vec<f32>,
    pub scores: Scores,
    /// The answer of the model used before the last change (fine-tuning, loaded weights,
    /// reset): class name and calibrated confidence, shown beside the new one.
    pub before: Option<(String, f32)>,
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
    /// "before", named with the classes of the model that gave it. `None` for a card without
    /// an answer.
    pub fn to_reclassify(&self, names: &[String]) -> Option<(Vec<f32>, (String, f32))> {
        match self {
            CardResult::Done(c) => {
                let (_, name, confidence) = describe(&c.scores.cnn, names);
                Some((c.pixels.clone(), (name, confidence)))
            }
            _ => None,
        }
    }
}

/// "Sneaker, 97.1%": the most likely class, its name in `names` (the classes in label order)
/// and its probability.
pub fn describe(probs: &[f32], names: &[String]) -> (usize, String, f32) {
    let label = fashion_model::network::argmax(probs);
    let name = names.get(label).cloned().unwrap_or_else(|| format!("class {label}"));
    (label, name, probs.get(label).copied().unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use fashion_model::{IMAGE_PIXELS, NUM_CLASSES, classes::fashion_names, verdict::Verdict};

    use super::*;

    /// An answered card: `class` at 0.91, every pixel `pixel`.
    pub fn done(class: usize, pixel: f32) -> CardResult {
        let mut cnn = vec![0.01; NUM_CLASSES];
        cnn[class] = 0.91;
        let scores = Scores { cnn, verdict: Verdict::Sure { class, confidence: 0.91 }, baseline: None };
        CardResult::Done(Classified { pixels: vec![pixel; IMAGE_PIXELS], scores, before: None })
    }

    #[test]
    fn only_answered_cards_are_classified_again_with_their_answer_as_before() {
        let (pixels, before) = done(8, 0.25).to_reclassify(&fashion_names()).expect("an answered card");
        assert_eq!(pixels, vec![0.25; IMAGE_PIXELS]);
        assert_eq!(before.0, "Bag");
        assert!((before.1 - 0.91).abs() < 1e-6);
        assert_eq!(CardResult::Working.to_reclassify(&fashion_names()), None);
        assert_eq!(CardResult::Failed("x".into()).to_reclassify(&fashion_names()), None);
    }

    #[test]
    fn describe_names_the_most_likely_class() {
        let mut probs = vec![0.0; NUM_CLASSES];
        probs[9] = 0.6;
        probs[5] = 0.4;
        assert_eq!(describe(&probs, &fashion_names()), (9, "Ankle boot".to_string(), 0.6));
        // An own class, and a label past the names (a late answer of a removed class).
        let mut names = fashion_names();
        names.push("Hat".into());
        probs.push(0.9);
        assert_eq!(describe(&probs, &names), (10, "Hat".to_string(), 0.9));
        assert_eq!(describe(&probs, &fashion_names()).1, "class 10");
    }
}
