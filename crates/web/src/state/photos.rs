//! The user's photos: adding them to the gallery, re-framing one, explaining an answer, and
//! classifying every card again after the model changed.

use fashion_gallery::{CardResult, Classified};
use fashion_model::Framing;
use leptos::{prelude::*, task::spawn_local};

use super::{AppState, Card};
use crate::{browser, decoder};

/// A card to classify, its model input, and its answer under the previous model, if any.
pub(super) type Job = (Card, Vec<f32>, Option<(String, f32)>);

impl AppState {
    /// Adds files to the gallery (newest first) and classifies them.
    pub fn add_files(self, files: Vec<web_sys::File>) {
        self.add_photos(files, None);
    }

    /// Adds photos to the gallery, taught `teach` if given (frames recorded from the camera),
    /// and classifies them.
    pub(super) fn add_photos(self, files: Vec<web_sys::File>, teach: Option<u8>) {
        if files.is_empty() {
            return;
        }
        let parent = self.owner.get_value();
        let ids = self.gallery.write_untracked().next_ids(files.len());
        let cards: Vec<Card> = ids
            .zip(files)
            .map(|(id, file)| {
                let card = Card::new(id, file, parent.child());
                card.teach.set(teach);
                card
            })
            .collect();
        let dropped = self.gallery.write().add_newest(cards.iter().cloned(), Card::is_taught);
        dropped.into_iter().for_each(Card::release);
        spawn_local(async move {
            let mut ready = Vec::new();
            for card in cards {
                match decoder::decode(&card.file, Framing::default()).await {
                    Ok(decoded) => {
                        card.frame.set(Some(decoded.frame));
                        card.item.set(Some(decoded.item));
                        ready.push((card, decoded.pixels, None))
                    }
                    Err(e) => {
                        card.unreadable.set(Some(e.clone()));
                        card.result.set(CardResult::Failed(e));
                    }
                }
                browser::yield_now().await;
            }
            self.classify_cards(ready).await;
        });
    }

    /// Classifies cards in one batch.
    pub(super) async fn classify_cards(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let pixels: Vec<f32> = jobs.iter().flat_map(|(_, p, _)| p.iter().copied()).collect();
        match self.router.classify(&pixels).await {
            Ok(scores) => {
                for ((card, pixels, before), scores) in jobs.into_iter().zip(scores) {
                    // An item found on a surface needs more confidence to be sure (`Scores::found_on_surface`).
                    let scores = scores.found_on_surface(card.item.get_untracked().is_some_and(|item| item.on_surface));
                    // A heatmap explained the previous answer, not this one.
                    card.heat.set(None);
                    card.result.set(CardResult::Done(Classified { pixels, scores, before }));
                }
            }
            Err(e) => {
                for (card, ..) in jobs {
                    card.result.set(CardResult::Failed(format!("classification failed: {e}")));
                }
            }
        }
    }

    /// Re-frames a card's photo (turn, mirror, crop) and classifies the new view, read again
    /// from the original file. A framing that cannot be applied (an empty or tiny crop box)
    /// leaves the card's framing and answer as they were and says why on the card.
    pub fn reframe(self, card: Card, framing: Framing) {
        card.framing_error.set(None);
        spawn_local(async move {
            match decoder::decode(&card.file, framing).await {
                Ok(decoded) => {
                    card.framing.set(framing);
                    card.thumbnails.set(decoded.thumbnails);
                    card.frame.set(Some(decoded.frame));
                    card.item.set(Some(decoded.item));
                    card.result.set(CardResult::Working);
                    self.classify_cards(vec![(card, decoded.pixels, None)]).await;
                }
                Err(e) => card.framing_error.set(Some(format!("Not re-framed: {e}. The card keeps its framing and answer."))),
            }
        });
    }

    /// Computes the heatmap of a card's answer ("Why?"); a failure is shown on the page and
    /// changes nothing else.
    pub fn explain(self, card: Card, pixels: Vec<f32>) {
        spawn_local(async move {
            match self.router.explain(&pixels).await {
                Ok(heat) => card.heat.set(Some(heat)),
                Err(e) => self.error.set(Some(format!("Could not explain this answer: {e}"))),
            }
        });
    }

    /// Classifies every answered card again (after the model changed), keeping each one's
    /// previous answer, named with `was` (the previous model's classes), to show beside the
    /// new one.
    pub async fn reclassify_all(&self, was: &[String]) {
        let jobs: Vec<Job> = self.gallery.with_untracked(|g| {
            g.cards()
                .iter()
                .filter_map(|card| {
                    let (pixels, before) = card.result.with_untracked(|r| r.to_reclassify(was))?;
                    Some((card.clone(), pixels, Some(before)))
                })
                .collect()
        });
        // Show that the answers are being replaced rather than leave stale ones in place.
        for (card, ..) in &jobs {
            card.result.set(CardResult::Working);
        }
        self.classify_cards(jobs).await;
    }
}
