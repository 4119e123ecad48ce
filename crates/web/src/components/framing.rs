//! Fixing the framing on a card: turn, mirror, crop (drag a box, or use the keyboard), back to
//! the original. The card is re-classified from the original file ([`AppState::reframe`]); the
//! geometry lives in `fashion_model::framing`, these components only render and forward.

use fashion_gallery::CardResult;
use fashion_model::{
    CropBox, Framing,
    framing::{KEY_STEP, Thumbnail},
};
use leptos::{ev, html, prelude::*};
use wasm_bindgen::JsCast;

use crate::{
    browser,
    decoder::ItemRegion,
    state::{AppState, Card},
};

/// The card's framing actions, shared by the photo (the crop editor's keys) and the buttons.
#[derive(Clone)]
pub struct Reframer {
    pub card: Card,
    /// The crop box being edited, while the crop editor is open.
    pub editing: RwSignal<Option<CropBox>>,
    state: AppState,
}

impl Reframer {
    pub fn new(card: Card) -> Self {
        Self { card, editing: RwSignal::new(None), state: expect_context::<AppState>() }
    }

    /// A file that could not be read cannot be re-framed: say so instead.
    fn readable(&self, what: &str) -> bool {
        match self.card.unreadable.get_untracked() {
            Some(reason) => {
                self.card.framing_error.set(Some(format!("This file cannot be read ({reason}), so it cannot be {what}.")));
                false
            }
            None => true,
        }
    }

    /// Turn, mirror or reset, from the framing in force.
    fn change(&self, how: fn(Framing) -> Framing) {
        if self.readable("re-framed") {
            self.editing.set(None);
            self.state.reframe(self.card.clone(), how(self.card.framing.get_untracked()));
        }
    }

    fn start_crop(&self) {
        if self.readable("cropped") {
            self.card.framing_error.set(None);
            self.editing.set(Some(self.card.framing.get_untracked().crop.unwrap_or(CropBox::WHOLE)));
        }
    }

    fn apply_crop(&self) {
        let Some(crop) = self.editing.get_untracked() else { return };
        match self.card.framing.get_untracked().cropped(crop) {
            Ok(framed) => {
                self.editing.set(None);
                self.state.reframe(self.card.clone(), framed);
            }
            // The editor stays open with the box as it was; nothing else changes.
            Err(e) => self.card.framing_error.set(Some(format!("Not cropped: {e}."))),
        }
    }

    fn cancel_crop(&self) {
        self.editing.set(None);
        self.card.framing_error.set(None);
    }
}

/// The photo as the card shows it: the uploaded file, or once re-framed the framed view; while
/// cropping, the view without its crop and the box being edited over it. `overlay` (the
/// heatmap) is drawn over the framed view only.
#[component]
pub fn FramedPhoto(reframer: Reframer, overlay: ViewFn) -> impl IntoView {
    let editing = reframer.editing;
    let Card { name, photo_url, thumbnails, item, .. } = reframer.card.clone();
    let alt = format!("Uploaded photo {name}");
    let picture = move || {
        let cropping = editing.get().is_some();
        match (thumbnails.get(), cropping) {
            (Some((view, _)), false) => view! { <ThumbnailCanvas thumbnail=view alt=alt.clone() /> }.into_any(),
            (Some((_, whole)), true) => view! { <ThumbnailCanvas thumbnail=whole alt=alt.clone() /> }.into_any(),
            (None, _) => view! { <img class="photo" src=photo_url.clone() alt=alt.clone() /> }.into_any(),
        }
    };
    view! {
        <div class="photo-frame">
            {picture}
            {move || {
                if editing.get().is_some() { view! { <CropEditor reframer=reframer.clone() /> }.into_any() } else { overlay.run() }
            }}
            {move || (editing.get().is_none()).then(|| item.get()).flatten().map(|region| view! { <ItemOutline region /> })}
        </div>
    }
}

/// A dashed outline of the region the preprocessing took as the item (hidden while cropping:
/// the user's crop box overrides it).
#[component]
fn ItemOutline(region: ItemRegion) -> impl IntoView {
    let [left, top, width, height] = region.bounds;
    let style = format!("left:{}%;top:{}%;width:{}%;height:{}%", 100.0 * left, 100.0 * top, 100.0 * width, 100.0 * height);
    let title = if region.on_surface {
        "The item found on the surface: this is what the network sees. If it is wrong, crop the photo."
    } else {
        "The item found on the backdrop: this is what the network sees. If it is wrong, crop the photo."
    };
    view! {
        <div
            class="item-outline"
            style=style
            title=title
            data-testid="item-outline"
            data-on-surface=region.on_surface.to_string()
            aria-hidden="true"
        ></div>
    }
}

/// The box being edited over the uncropped view. Drag to draw it; with the keyboard, arrows
/// move it and Shift+arrows resize it.
#[component]
fn CropEditor(reframer: Reframer) -> impl IntoView {
    let editing = reframer.editing;
    let area = NodeRef::<html::Div>::new();
    let the_box = NodeRef::<html::Div>::new();
    let drag_start = StoredValue::new(None::<(f32, f32)>);
    // Where a pointer event falls on the view, as fractions.
    let at = move |event: &ev::PointerEvent| -> Option<(f32, f32)> {
        let rect = area.get_untracked()?.get_bounding_client_rect();
        (rect.width() > 0.0 && rect.height() > 0.0).then(|| {
            (
                ((event.client_x() as f64 - rect.left()) / rect.width()) as f32,
                ((event.client_y() as f64 - rect.top()) / rect.height()) as f32,
            )
        })
    };
    let down = move |event: ev::PointerEvent| {
        let Some(point) = at(&event) else { return };
        event.prevent_default();
        if let Some(target) = event.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
            let _ = target.set_pointer_capture(event.pointer_id());
        }
        drag_start.set_value(Some(point));
        editing.set(Some(CropBox::from_corners(point, point)));
    };
    let moved = move |event: ev::PointerEvent| {
        if let (Some(start), Some(point)) = (drag_start.get_value(), at(&event)) {
            editing.set(Some(CropBox::from_corners(start, point)));
        }
    };
    let up = move |_: ev::PointerEvent| {
        drag_start.set_value(None);
        if let Some(the_box) = the_box.get_untracked() {
            let _ = the_box.focus();
        }
    };
    // The box takes the keyboard focus when the editor opens.
    Effect::new(move |_| {
        if let Some(the_box) = the_box.get() {
            let _ = the_box.focus();
        }
    });
    let keys = move |event: ev::KeyboardEvent| {
        let Some(crop) = editing.get_untracked() else { return };
        let (dx, dy) = match event.key().as_str() {
            "ArrowLeft" => (-KEY_STEP, 0.0),
            "ArrowRight" => (KEY_STEP, 0.0),
            "ArrowUp" => (0.0, -KEY_STEP),
            "ArrowDown" => (0.0, KEY_STEP),
            "Enter" => {
                event.prevent_default();
                return reframer.apply_crop();
            }
            "Escape" => return reframer.cancel_crop(),
            _ => return,
        };
        event.prevent_default();
        editing.set(Some(if event.shift_key() { crop.resized(dx, dy) } else { crop.moved(dx, dy) }));
    };
    let style = move || {
        editing
            .get()
            .map(|c| format!("left:{}%;top:{}%;width:{}%;height:{}%", 100.0 * c.left, 100.0 * c.top, 100.0 * c.width, 100.0 * c.height))
            .unwrap_or_default()
    };
    view! {
        <div class="crop-area" node_ref=area on:pointerdown=down on:pointermove=moved on:pointerup=up data-testid="crop-area">
            <div
                class="crop-box"
                node_ref=the_box
                tabindex="0"
                role="group"
                aria-label="Crop box: drag on the photo, or use the arrow keys to move it and Shift with the arrow keys to resize it; Enter crops, Escape cancels"
                data-testid="crop-box"
                style=style
                on:keydown=keys
            ></div>
        </div>
    }
}

/// Turn, Mirror, Crop… and Original; while cropping, Crop, Cancel and Whole photo.
#[component]
pub fn FramingTools(reframer: Reframer) -> impl IntoView {
    let (editing, framing, result, framing_error) =
        (reframer.editing, reframer.card.framing, reframer.card.result, reframer.card.framing_error);
    // One change at a time: the next starts from the framing the last one set.
    let busy = move || matches!(result.get(), CardResult::Working);
    let tools = move || {
        let r = reframer.clone();
        if editing.get().is_some() {
            let (apply, cancel) = (r.clone(), r.clone());
            view! {
                <button type="button" class="button small" data-testid="crop-apply" on:click=move |_| apply.apply_crop()>"Crop"</button>
                <button type="button" class="button small" data-testid="crop-cancel" on:click=move |_| cancel.cancel_crop()>"Cancel"</button>
                <button
                    type="button"
                    class="button small"
                    data-testid="crop-whole"
                    title="Select the whole photo"
                    on:click=move |_| editing.set(Some(CropBox::WHOLE))
                >
                    "Whole photo"
                </button>
            }
            .into_any()
        } else {
            let (turn, mirror, crop, original) = (r.clone(), r.clone(), r.clone(), r);
            view! {
                <button
                    type="button"
                    class="button small"
                    data-testid="rotate"
                    title="Turn the photo 90° clockwise"
                    disabled=busy
                    on:click=move |_| turn.change(Framing::turned)
                >
                    "↻ Turn"
                </button>
                <button
                    type="button"
                    class="button small"
                    data-testid="mirror"
                    title="Mirror the photo left to right"
                    disabled=busy
                    on:click=move |_| mirror.change(Framing::mirrored)
                >
                    "⇆ Mirror"
                </button>
                <button
                    type="button"
                    class="button small"
                    data-testid="crop"
                    title="Crop to the item: drag a box on the photo, or use the arrow keys"
                    disabled=busy
                    on:click=move |_| crop.start_crop()
                >
                    "Crop…"
                </button>
                <button
                    type="button"
                    class="button small"
                    data-testid="original"
                    title="Back to the photo as uploaded"
                    hidden=move || framing.get().is_original()
                    disabled=busy
                    on:click=move |_| original.change(|_| Framing::default())
                >
                    "Original"
                </button>
            }
            .into_any()
        }
    };
    view! {
        <div class="framing" role="group" aria-label="Fix the framing">
            {tools}
            {move || framing_error.get().map(|e| view! { <p class="error" data-testid="framing-error" role="alert">{e}</p> })}
        </div>
    }
}

/// A thumbnail of a re-framed view, drawn on a canvas.
#[component]
fn ThumbnailCanvas(thumbnail: Thumbnail, alt: String) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    let (width, height) = (thumbnail.width, thumbnail.height);
    Effect::new(move |_| {
        if let Some(canvas) = canvas.get() {
            browser::draw_rgba(&canvas, &thumbnail.rgba, width, height);
        }
    });
    view! { <canvas class="photo" width=width.to_string() height=height.to_string() node_ref=canvas role="img" aria-label=alt></canvas> }
}
