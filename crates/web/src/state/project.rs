//! "Save project" and "Open project…": the teaching set (every photo the user taught, as its
//! 28×28 input with a thumbnail) and the model in use, as one file
//! ([`fashion_gallery::project`]) that opens again in another browser or on another machine.

use fashion_gallery::{
    CardResult, ClassList, MAX_TAUGHT, gray_levels,
    project::{self, Project, TaughtPhoto},
};
use fashion_model::{IMAGE_PIXELS, NUM_CLASSES};
use leptos::{prelude::*, task::spawn_local};

use super::{AppState, Card};
use crate::{browser, storage};

/// Thumbnails in a project are at most this many pixels a side.
const THUMBNAIL_SIDE: u32 = 96;

impl AppState {
    /// Offers the teaching set and the model in use as a project file.
    pub fn save_project(self) {
        let taught: Vec<(Card, u8, Vec<f32>)> = self.gallery.with_untracked(|g| {
            g.cards()
                .iter()
                .filter_map(|card| {
                    let label = card.teach.get_untracked()?;
                    match card.result.get_untracked() {
                        CardResult::Done(c) => Some((card.clone(), label, c.pixels)),
                        _ => None,
                    }
                })
                .collect()
        });
        spawn_local(async move {
            let result = async {
                let engine = self.router.models().ok_or("the model is not loaded yet")?;
                let mut photos = Vec::with_capacity(taught.len());
                // Oldest first, so that opening the file gives the gallery back in its order.
                for (card, label, pixels) in taught.into_iter().rev() {
                    let input = gray_levels(&pixels);
                    // A photo the browser cannot draw (none it decodes) is kept without one.
                    let thumbnail = browser::thumbnail_jpeg(&card.file, THUMBNAIL_SIDE).await.ok();
                    photos.push(TaughtPhoto { name: card.name.clone(), label, held_out: card.held_out.get_untracked(), input, thumbnail });
                }
                let count = photos.len();
                let classes = self.classes.get_untracked().names().to_vec();
                let bytes = Project::new(classes, photos, engine.cnn.bytes.to_vec()).encode().map_err(|e| e.to_string())?;
                browser::download(&bytes, &format!("fashion-project.{}", project::EXTENSION))?;
                Ok::<_, String>(count)
            }
            .await;
            match result {
                Ok(count) => self.notice.set(Some(format!("Saved the project: {count} taught photo(s) and the model in use."))),
                Err(e) => self.error.set(Some(format!("The project could not be saved: {e}"))),
            }
        });
    }

    /// Opens a project file: its model replaces the one in use (kept in this browser as a
    /// fine-tune is) and its photos join the gallery, taught as they were. Everything is
    /// checked first; a bad file changes nothing.
    pub fn open_project(self, file: web_sys::File) {
        spawn_local(async move {
            let name = file.name();
            let result = async {
                let bytes = browser::read_file(&file).await?;
                let project = Project::decode(&bytes).map_err(|e| e.to_string())?;
                let taught = self.gallery.with_untracked(|g| g.count(Card::is_taught));
                if taught + project.photos.len() > MAX_TAUGHT {
                    return Err(format!(
                        "its {} photos and the {taught} taught here would pass the {MAX_TAUGHT} a teaching set holds; remove some first",
                        project.photos.len()
                    ));
                }
                let engine = self.router.engine().await?;
                let next = engine.with_weights(project.model.clone()).map_err(|e| format!("the project's model is unusable: {e}"))?;
                // Every photo becomes a file the card can show and re-frame: its thumbnail, or
                // else its 28×28 input.
                let files = project
                    .photos
                    .iter()
                    .map(|photo| {
                        let (bytes, kind) = match &photo.thumbnail {
                            Some(jpeg) => (jpeg.clone(), "image/jpeg"),
                            None => (photo.input_png().map_err(|e| e.to_string())?, "image/png"),
                        };
                        browser::file(&bytes, &photo.name, kind)
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok::<_, String>((project, next, files))
            }
            .await;
            let (project, next, files) = match result {
                Ok(opened) => opened,
                Err(e) => return self.error.set(Some(format!("{name} was not opened: {e}. Nothing was changed."))),
            };
            let fine_tuned = next.cnn.summary.fine_tuned == Some(true);
            let was = self.install(next).await;
            // The project's own classes join those here (by name), and its photos keep theirs.
            let in_project = ClassList::default().with_pending(&project.classes[NUM_CLASSES.min(project.classes.len())..]);
            self.set_classes(self.classes.get_untracked().with_pending(&project.classes));
            let classes = self.classes.get_untracked();
            let kept = if fine_tuned {
                storage::put(storage::FINE_TUNED, &project.model).await
            } else {
                storage::delete(storage::FINE_TUNED).await
            };
            self.error.set(None);
            self.notice.set(Some(match kept {
                Ok(()) => format!("Opened {name}: {} taught photo(s) and its model, now in use.", project.photos.len()),
                Err(e) => format!("Opened {name}, but its model could not be kept in this browser ({e}); it is in use until you reload."),
            }));
            // The cards already here show the new model's answer beside the old one; the
            // project's own photos join after, answered by their model.
            self.reclassify_all(&was).await;
            let inputs = project.photos.iter().map(|p| {
                let label = in_project.label_in(&classes, p.label);
                (label, p.held_out, p.input.iter().map(|&v| v as f32 / 255.0).collect::<Vec<f32>>())
            });
            self.add_taught(files.into_iter().zip(inputs).collect()).await;
        });
    }

    /// Cards for photos whose model input is already known (from a project), taught `label`
    /// and held out as they were.
    async fn add_taught(&self, photos: Vec<(web_sys::File, (Option<u8>, bool, Vec<f32>))>) {
        let parent = self.owner.get_value();
        let ids = self.gallery.write_untracked().next_ids(photos.len());
        let mut cards = Vec::with_capacity(photos.len());
        let mut jobs = Vec::with_capacity(photos.len());
        for (id, (file, (label, held_out, pixels))) in ids.zip(photos) {
            debug_assert_eq!(pixels.len(), IMAGE_PIXELS);
            // The card shows the thumbnail; its input is the one saved (made from the original
            // photo), so it has no frame or outline on the thumbnail until it is re-framed.
            let card = Card::new(id, file, parent.child());
            card.teach.set(label);
            card.held_out.set(held_out);
            jobs.push((card.clone(), pixels, None));
            cards.push(card);
        }
        let dropped = self.gallery.write().add_newest(cards, Card::is_taught);
        dropped.into_iter().for_each(Card::release);
        self.classify_cards(jobs).await;
    }
}
