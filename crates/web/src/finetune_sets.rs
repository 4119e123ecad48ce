//! The replay set and the held-out slice that fine-tuning needs (`web/replay.fms`,
//! `web/heldout.fms`, written by `trainer samples`): downloaded from this site the first time
//! they are needed, then kept.

use std::{cell::RefCell, rc::Rc};

use fashion_engine::finetune::Sets;
use fashion_model::LabelledImages;

use crate::browser;

thread_local! {
    static SETS: RefCell<Option<Rc<Sets>>> = const { RefCell::new(None) };
}

async fn fetch_set(url: &str) -> Result<LabelledImages, String> {
    let bytes = browser::fetch_bytes(url).await?;
    LabelledImages::decode(&bytes).map_err(|e| format!("{url}: {e}"))
}

/// Both sets, downloaded once.
pub async fn load() -> Result<Rc<Sets>, String> {
    if let Some(sets) = SETS.with(|s| s.borrow().clone()) {
        return Ok(sets);
    }
    let sets = Rc::new(Sets { replay: fetch_set("replay.fms").await?, heldout: fetch_set("heldout.fms").await? });
    SETS.with(|s| *s.borrow_mut() = Some(sets.clone()));
    Ok(sets)
}
