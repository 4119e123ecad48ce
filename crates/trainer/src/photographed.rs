//! Training items as the page sees them in a photograph: each item drawn lying on a surface
//! (`testkit::surface_photo`: textured and plain surfaces, uneven light, a shadow, JPEG),
//! then preprocessed by the page's own code (`fashion_model::preprocess_bytes`). Training on
//! a share of these teaches the network what the preprocessing makes of a garment on a floor:
//! a flattened, softly outlined silhouette, sometimes with its shadow joined to it.
//!
//! The pictures are numbered from [`FIRST_PICTURE`], apart from the surface set that `trainer
//! suite` reports (from 0) and from the development pictures of `docs/surfaces.md` (from
//! 1,000,000), and only training items are drawn: nothing the suite or validation measures is
//! seen in training.

use fashion_model::IMAGE_PIXELS;
#[cfg(feature = "suite")]
use fashion_model::{DecodeLimits, LabelledImages, preprocess_bytes};
#[cfg(feature = "suite")]
use rayon::prelude::*;

/// The number of the first training picture (`testkit::surface_photo`'s picture index).
pub const FIRST_PICTURE: usize = 3_000_000;

/// Preprocessed photographs of some training items, by item index.
#[derive(Debug, Clone, Default)]
pub struct Photographed {
    pub(crate) inputs: Vec<u8>,
    /// For each training item, the index of its photograph in `inputs`, if it has one.
    pub(crate) of_item: Vec<Option<u32>>,
}

impl Photographed {
    /// Photographs the first `count` items of `train` (the split is already shuffled, so they
    /// are a random sample of every class) and preprocesses them as the page does. An item the
    /// preprocessing finds nothing in gets no photograph. Runs on every core; `done` is told
    /// of each photograph as it is made. Needs the picture generator (the `suite` feature).
    #[cfg(feature = "suite")]
    pub fn render(train: &LabelledImages, count: usize, done: impl Fn() + Sync) -> Self {
        let count = count.min(train.len());
        let rendered: Vec<Option<[u8; IMAGE_PIXELS]>> = (0..count)
            .into_par_iter()
            .map(|i| {
                let (jpeg, _) = testkit::surface_photo(Some(train.image(i)), FIRST_PICTURE + i);
                let input = preprocess_bytes(&jpeg, DecodeLimits::default()).ok().map(|p| p.to_u8());
                done();
                input
            })
            .collect();
        let mut photographed = Self { inputs: Vec::with_capacity(count * IMAGE_PIXELS), of_item: vec![None; train.len()] };
        for (i, input) in rendered.into_iter().enumerate() {
            if let Some(input) = input {
                photographed.of_item[i] = Some((photographed.inputs.len() / IMAGE_PIXELS) as u32);
                photographed.inputs.extend_from_slice(&input);
            }
        }
        photographed
    }

    /// How many items have a photograph.
    pub fn len(&self) -> usize {
        self.inputs.len() / IMAGE_PIXELS
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The preprocessed photograph of training item `item` (28×28, 0 = background), if any.
    pub fn of(&self, item: usize) -> Option<&[u8]> {
        let k = (*self.of_item.get(item)?)? as usize;
        Some(&self.inputs[k * IMAGE_PIXELS..(k + 1) * IMAGE_PIXELS])
    }
}

#[cfg(all(test, feature = "suite"))]
mod tests {
    use super::*;

    /// A filled "T" (a T-shirt's silhouette) on black, as Fashion-MNIST draws items.
    fn t_shirt() -> Vec<u8> {
        (0..IMAGE_PIXELS)
            .map(|i| {
                let (x, y) = (i % 28, i / 28);
                let sleeves = (4..11).contains(&y) && (3..25).contains(&x);
                let body = (4..25).contains(&y) && (8..20).contains(&x);
                if sleeves || body { 190 } else { 0 }
            })
            .collect()
    }

    #[test]
    fn photographs_are_found_and_kept_by_item() {
        let mut train = LabelledImages::default();
        for label in 0..6u8 {
            train.push(&t_shirt(), label);
        }
        let made = std::sync::atomic::AtomicUsize::new(0);
        let photographed = Photographed::render(&train, 4, || {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(made.into_inner(), 4, "each photograph is reported");
        // Items past `count` get none; most rendered ones are found (the generator also lays
        // items on busy surfaces, so one may be missed).
        assert!(photographed.of(4).is_none() && photographed.of(5).is_none() && photographed.of(99).is_none());
        assert!(photographed.len() >= 3, "only {} of 4 photographs were found", photographed.len());
        for i in (0..4).filter(|&i| photographed.of(i).is_some()) {
            let input = photographed.of(i).unwrap();
            let lit = input.iter().filter(|&&p| p > 64).count();
            // The item, trimmed and centred as the page does: a large lit region, dark corners.
            assert!(lit > 100, "photograph {i} has only {lit} lit pixels");
            assert!([0, 27, 28 * 27, 28 * 28 - 1].iter().all(|&c| input[c] < 64), "photograph {i} is lit in a corner");
        }
    }
}
