//! One uploaded photo's card. Its signals are created inside a reactive owner of its own, so
//! that [`Card::release`] disposes all of them (and the photo's object URL) at once: nothing
//! lists them by hand, and a field added later is released too.

use fashion_gallery::{CardResult, Taught};
use fashion_model::{Framing, framing::Thumbnail};
use leptos::prelude::*;

use crate::decoder::ItemRegion;

/// One uploaded file in the gallery.
#[derive(Clone)]
pub struct Card {
    pub id: u64,
    pub name: String,
    /// `blob:` URL of the user's file, for the thumbnail.
    pub photo_url: Option<String>,
    /// The file as the user gave it: every re-framing starts again from it.
    pub file: web_sys::File,
    pub result: RwSignal<CardResult>,
    /// The class the user says this photo shows, which puts it in the fine-tuning set.
    pub teach: RwSignal<Option<u8>>,
    /// A taught photo held out: fine-tuning is measured on it, never learns from it.
    pub held_out: RwSignal<bool>,
    /// Where the 28×28 view lies on the photo (fractions; see `Preprocessed::frame`).
    pub frame: RwSignal<Option<[f32; 4]>>,
    /// The region taken as the item, outlined on the photo.
    pub item: RwSignal<Option<ItemRegion>>,
    /// The occlusion heatmap of the current answer (28×28, 0..=1), once asked for ("Why?").
    pub heat: RwSignal<Option<Vec<f32>>>,
    /// The user's turns, mirror and crop of the photo.
    pub framing: RwSignal<Framing>,
    /// Once re-framed: thumbnails of the view and of the view without its crop.
    pub thumbnails: RwSignal<Option<(Thumbnail, Thumbnail)>>,
    /// Why the file cannot be read at all (re-framing cannot help then).
    pub unreadable: RwSignal<Option<String>>,
    /// Why the last re-framing was refused; the card's answer is unchanged.
    pub framing_error: RwSignal<Option<String>>,
    /// Owns every signal above and the photo URL's release.
    owner: Owner,
}

impl Card {
    /// A card for `file`, waiting for its answer; `owner` is the card's own reactive owner.
    pub fn new(id: u64, file: web_sys::File, owner: Owner) -> Self {
        owner.clone().with(|| {
            let photo_url = web_sys::Url::create_object_url_with_blob(&file).ok();
            if let Some(url) = photo_url.clone() {
                on_cleanup(move || drop(web_sys::Url::revoke_object_url(&url)));
            }
            Self {
                id,
                name: file.name(),
                photo_url,
                file,
                result: RwSignal::new(CardResult::Working),
                teach: RwSignal::new(None),
                held_out: RwSignal::new(false),
                frame: RwSignal::new(None),
                item: RwSignal::new(None),
                heat: RwSignal::new(None),
                framing: RwSignal::new(Framing::default()),
                thumbnails: RwSignal::new(None),
                unreadable: RwSignal::new(None),
                framing_error: RwSignal::new(None),
                owner,
            }
        })
    }

    /// What the card contributes to teaching (untracked).
    pub fn taught(&self) -> Taught {
        Taught { label: self.teach.get_untracked(), held_out: self.held_out.get_untracked() }
    }

    /// Whether the user taught this card a class: it is then part of their teaching set, which
    /// the gallery never drops.
    pub fn is_taught(&self) -> bool {
        self.teach.with_untracked(Option::is_some)
    }

    /// Releases what the card holds once the gallery drops it: its photo's object URL and all
    /// its signals (a task still working on it then writes to nothing).
    pub fn release(self) {
        self.owner.cleanup();
    }
}
