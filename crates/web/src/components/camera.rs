use super::{
    card::{Bars, Seen},
    class_select::ClassSelect,
};
use crate::state::{AppState, LiveAnswer};
use fashion_gallery::{CameraPhase, camera::guide_square, describe};
use fashion_model::verdict::Verdict;
use leptos::{html, prelude::*};

/// Live camera: the video with the guide square, the answer for what is inside it with its
/// bars and the 28×28 input, how many answers a second the backend gives, and Snap, Record
/// (held) and Stop.
#[component]
pub fn CameraPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let video = NodeRef::<html::Video>::new();
    let phase = Memo::new(move |_| state.camera.with(|c| c.phase.clone()));
    let live = move || phase.get() == CameraPhase::Live;
    let start = move |_| {
        if let Some(video) = video.get_untracked() {
            state.start_camera(video);
        }
    };
    // The guide square over the video, placed once the video's size is known.
    let guide = RwSignal::new(String::new());
    let place_guide = move || {
        let Some(v) = video.get_untracked() else { return };
        let (w, h) = (v.video_width(), v.video_height());
        if w > 0 && h > 0 {
            let (left, top, side) = guide_square(w, h);
            let (w, h) = (f64::from(w), f64::from(h));
            guide.set(format!(
                "left:{}%;top:{}%;width:{}%;height:{}%",
                100.0 * left / w,
                100.0 * top / h,
                100.0 * side / w,
                100.0 * side / h
            ));
        }
    };
    let status = move || match phase.get() {
        CameraPhase::Off => None,
        CameraPhase::Starting => Some(view! { <p class="hint">"Asking for the camera…"</p> }.into_any()),
        CameraPhase::Live => None,
        CameraPhase::Failed(e) => Some(view! { <p class="error" data-testid="camera-error" role="alert">{e.to_string()}</p> }.into_any()),
    };
    view! {
        <section class="camera" aria-label="live camera" data-testid="camera-panel" data-phase=move || format!("{:?}", phase.get())>
            <div class="camera-buttons">
                <Show when=move || !matches!(phase.get(), CameraPhase::Live | CameraPhase::Starting)>
                    <button type="button" class="button" data-testid="camera-start" on:click=start>
                        "Live camera"
                    </button>
                </Show>
                <Show when=live>
                    <button type="button" class="button" data-testid="camera-stop" on:click=move |_| state.stop_camera()>
                        "Stop camera"
                    </button>
                </Show>
            </div>
            {status}
            <div class="camera-live" class:hidden=move || !live()>
                <div class="camera-view">
                    <video node_ref=video playsinline muted data-testid="camera-video" on:loadedmetadata=move |_| place_guide() on:resize=move |_| place_guide()></video>
                    <div class="guide" style=move || guide.get() aria-hidden="true"></div>
                </div>
                <LiveResult />
                <CameraActions />
            </div>
        </section>
    }
}

/// The answer for the latest frame, its bars and what the network saw.
#[component]
fn LiveResult() -> impl IntoView {
    let state = expect_context::<AppState>();
    let rate = Memo::new(move |_| state.camera.with(|c| c.rate));
    let work_ms = Memo::new(move |_| state.camera.with(|c| c.work_ms));
    let probs = Memo::new(move |_| match state.live.get() {
        Some(LiveAnswer::Answered { scores, .. }) => Some(scores.cnn),
        _ => None,
    });
    let pixels = Signal::derive(move || match state.live.get() {
        Some(LiveAnswer::Answered { pixels, .. }) => pixels,
        _ => vec![0.0; fashion_model::IMAGE_PIXELS],
    });
    let answer = move || match state.live.get() {
        None => view! { <p class="working">"Waiting for the first frame…"</p> }.into_any(),
        Some(LiveAnswer::NoInput(why)) => view! { <p class="answer unsure" data-testid="camera-answer" data-label="">{why}</p> }.into_any(),
        Some(LiveAnswer::Answered { scores, .. }) => {
            let (label, class, confidence) = state.classes.with_untracked(|c| describe(&scores.cnn, c.names()));
            let sure = matches!(scores.verdict, Verdict::Sure { .. });
            let text = if sure {
                format!("{class} {:.1}%", 100.0 * confidence)
            } else {
                format!("Not sure (maybe {class}, {:.0}%)", 100.0 * confidence)
            };
            view! {
                <p class="answer" class:unsure=!sure data-testid="camera-answer" data-label=label.to_string() data-sure=sure.to_string()>
                    <b>{text}</b>
                </p>
            }
            .into_any()
        }
    };
    let backend = move || state.router.status.with(|s| s.kind.map(|k| k.label().to_string()).unwrap_or_default());
    view! {
        <div class="prediction live">
            <div class="seen-frame"><Seen pixels /></div>
            {answer}
            <p class="rate" data-testid="camera-rate" data-rate=move || rate.get().to_string() data-work-ms=move || work_ms.get().to_string()>
                {move || format!("{} answers/s on {}: {:.0} ms per answer", rate.get(), backend(), work_ms.get())}
            </p>
            <Bars probs />
        </div>
    }
}

/// Snap, and Record held down (mouse, touch or keyboard) as the chosen class.
#[component]
fn CameraActions() -> impl IntoView {
    let state = expect_context::<AppState>();
    let class = RwSignal::new(None::<u8>);
    let problem = RwSignal::new(None::<String>);
    let recording = Memo::new(move |_| state.camera.with(|c| c.is_recording()));
    let recorded = Memo::new(move |_| state.camera.with(|c| c.recorded));
    let hold = move || match state.hold_record(class.get_untracked()) {
        Ok(()) => problem.set(None),
        Err(e) => problem.set(Some(e.to_string())),
    };
    let release = move || state.release_record();
    view! {
        <div class="camera-actions">
            <button type="button" class="button" data-testid="camera-snap" on:click=move |_| state.snap()>
                "Snap"
            </button>
            <label>
                "Record as "
                <ClassSelect value=class none_label="— choose —" testid="camera-class" />
            </label>
            <button
                type="button"
                class="button record"
                class:recording=move || recording.get()
                data-testid="camera-record"
                aria-pressed=move || recording.get().to_string()
                title="Hold to add a few frames a second to the teaching set, taught the chosen class"
                on:pointerdown=move |_| hold()
                on:pointerup=move |_| release()
                on:pointerleave=move |_| release()
                on:pointercancel=move |_| release()
                on:keydown=move |event: web_sys::KeyboardEvent| {
                    if (event.key() == " " || event.key() == "Enter") && !event.repeat() {
                        event.prevent_default();
                        hold();
                    }
                }
                on:keyup=move |_| release()
            >
                "Hold to record"
            </button>
            <span class="recorded" data-testid="camera-recorded" data-count=move || recorded.get().to_string()>
                {move || match recorded.get() {
                    0 => String::new(),
                    n => format!("{n} frame(s) recorded"),
                }}
            </span>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        </div>
    }
}
