//! The user's own classes: adding, renaming and removing them. The rules are
//! `fashion_gallery::ClassList`'s; here the list is kept in a signal, taught photos follow
//! their class, the model is changed where it already learnt the class (renamed or without
//! its row, no retraining), and the classes not learnt yet are kept in this browser, so that
//! a reload keeps them as it keeps the fine-tuned model.

use fashion_gallery::{ClassList, ModelChange};
use fashion_model::classes::ClassNameError;
use leptos::{prelude::*, task::spawn_local};

use super::AppState;
use crate::storage;

impl AppState {
    /// Puts `next` in place of the class list: every taught photo follows its class by name
    /// (untaught if its class is gone), and the classes not learnt yet are saved when they
    /// changed.
    pub(super) fn set_classes(&self, next: ClassList) {
        let now = self.classes.get_untracked();
        if now == next {
            return;
        }
        self.gallery.with_untracked(|g| {
            for card in g.cards() {
                if let Some(label) = card.teach.get_untracked() {
                    let moved = now.label_in(&next, label);
                    if moved != Some(label) {
                        card.teach.set(moved);
                    }
                }
            }
        });
        if now.pending() != next.pending() {
            self.save_pending(&next);
        }
        self.classes.set(next);
    }

    /// Keeps the classes not learnt yet in this browser; none: nothing is kept.
    fn save_pending(&self, classes: &ClassList) {
        let pending = (!classes.pending().is_empty()).then(|| serde_json::to_vec(classes.pending()).unwrap_or_default());
        let notice = self.notice;
        spawn_local(async move {
            let saved = match pending {
                Some(bytes) => storage::put(storage::OWN_CLASSES, &bytes).await,
                None => storage::delete(storage::OWN_CLASSES).await,
            };
            if let Err(e) = saved {
                notice.set(Some(format!("Your classes could not be saved in this browser ({e}); they last until you reload.")));
            }
        });
    }

    /// The classes not learnt yet that an earlier visit saved, after those of the model.
    pub(super) async fn restore_pending_classes(&self) {
        if let Ok(Some(bytes)) = storage::get(storage::OWN_CLASSES).await {
            let names: Vec<String> = serde_json::from_slice(&bytes).unwrap_or_default();
            self.set_classes(self.classes.get_untracked().with_pending(&names));
        }
    }

    /// Adds a class of the user's, to be taught from photos; the model learns it at the next
    /// fine-tuning run.
    pub fn add_class(&self, name: &str) -> Result<(), ClassNameError> {
        let mut next = self.classes.get_untracked();
        next.add(name)?;
        self.set_classes(next);
        Ok(())
    }

    /// Renames one of the user's classes, at once; where the model learnt it, the model's file
    /// is renamed too (same weights), so a download or a reload shows the new name. If that
    /// fails, the old name comes back.
    pub fn rename_class(self, label: usize, name: &str) -> Result<(), ClassNameError> {
        let previous = self.classes.get_untracked();
        let mut next = previous.clone();
        let change = next.rename(label, name)?;
        // A rename keeps every label: no photo moves, so the list is set as it is.
        self.classes.set(next.clone());
        if change == ModelChange::None {
            self.save_pending(&next);
        } else {
            let learnt = next.names()[..next.learnt()].to_vec();
            self.change_model(move |engine| engine.cnn.renamed(&learnt).map_err(|e| e.to_string()), false, None, Some(previous));
        }
        Ok(())
    }

    /// Removes one of the user's classes: its photos are no longer taught. Where the model
    /// learnt it, its output row goes too (the other answers are unchanged), the list changes
    /// once the new model is made, and every card is answered again; a failure changes nothing.
    pub fn remove_class(self, label: usize) -> Result<(), ClassNameError> {
        let mut next = self.classes.get_untracked();
        match next.remove(label)? {
            ModelChange::DropRow(row) => self.change_model(move |engine| engine.cnn.without_class(row), true, Some(next), None),
            _ => self.set_classes(next),
        }
        Ok(())
    }

    /// Replaces the CNN by the weights file `make` builds from the engine in use, keeps it in
    /// this browser, and (if `reclassify`) answers every card again. On success the class list
    /// becomes `then` (if given) before the new model's classes are installed; a failure changes
    /// nothing (the list goes back to `undo` where the caller changed it already).
    fn change_model(
        self,
        make: impl FnOnce(&fashion_engine::Engine) -> Result<Vec<u8>, String> + 'static,
        reclassify: bool,
        then: Option<ClassList>,
        undo: Option<ClassList>,
    ) {
        spawn_local(async move {
            let result = async {
                let engine = self.router.engine().await?;
                let bytes = make(&engine)?;
                let next = engine.with_weights(bytes.clone()).map_err(|e| e.to_string())?;
                Ok::<_, String>((next, bytes))
            }
            .await;
            let (next, bytes) = match result {
                Ok(changed) => changed,
                Err(e) => {
                    if let Some(list) = undo {
                        self.classes.set(list);
                    }
                    return self.error.set(Some(format!("The model could not be changed: {e}. Nothing was changed.")));
                }
            };
            // The answers so far, named as the model in use names them.
            let was = self.classes.with_untracked(|c| c.names()[..c.learnt()].to_vec());
            if let Some(list) = then {
                self.set_classes(list);
            }
            self.install(next).await;
            if let Err(e) = storage::put(storage::FINE_TUNED, &bytes).await {
                self.notice.set(Some(format!(
                    "The changed model is in use but could not be saved in this browser ({e}); download it to keep it."
                )));
            }
            if reclassify {
                self.reclassify_all(&was).await;
            }
        });
    }

    /// How many photos are taught each class (tracked), in label order.
    pub fn photos_per_class(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.with(ClassList::len)];
        for card in self.cards() {
            if let Some(count) = card.teach.get().and_then(|label| counts.get_mut(label as usize)) {
                *count += 1;
            }
        }
        counts
    }
}
