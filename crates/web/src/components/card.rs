use fashion_gallery::{CardResult, Classified};
use fashion_model::{
    IMAGE_SIDE,
    network::argmax,
    verdict::{Doubt, Verdict},
};
use leptos::{html, prelude::*};

use super::{
    class_select::ClassSelect,
    framing::{FramedPhoto, FramingTools, Reframer},
};
use crate::{browser, state::Card};

/// One uploaded photo: the file, what the model sees, the CNN's answer with the probability
/// of every class, and the logistic-regression baseline's answer.
#[component]
pub fn ResultCard(card: Card) -> impl IntoView {
    let this = card.clone();
    let reframer = Reframer::new(card.clone());
    let Card { name, result, teach, held_out, frame, heat, framing, .. } = card;
    // The heatmap lies over the photo where the 28×28 view was cut from it.
    let overlay = move || {
        let (Some([left, top, width, height]), Some(values)) = (frame.get(), heat.get()) else { return None };
        let style = format!("left:{}%;top:{}%;width:{}%;height:{}%", 100.0 * left, 100.0 * top, 100.0 * width, 100.0 * height);
        Some(view! { <HeatCanvas values class="heat-on-photo" style /> })
    };
    let photo = view! { <FramedPhoto reframer=reframer.clone() overlay=ViewFn::from(overlay) /> };
    // For tests and styling: turns, mirror and crop in force.
    let framing_attr = move || {
        let f = framing.get();
        let crop = f.crop.map(|c| format!("{:.3},{:.3},{:.3},{:.3}", c.left, c.top, c.width, c.height)).unwrap_or_else(|| "-".into());
        format!("{}/{}/{crop}", f.quarter_turns, u8::from(f.mirrored))
    };
    let body = {
        let name = name.clone();
        move || match result.get() {
            CardResult::Working => view! { <p class="working">"Classifying…"</p> }.into_any(),
            CardResult::Failed(message) => {
                view! { <p class="error" data-testid="error" role="alert">{format!("{name}: {message}")}</p> }.into_any()
            }
            CardResult::Done(classified) => view! { <Prediction classified card=this.clone() /> <Teach teach held_out /> }.into_any(),
        }
    };
    let (file, title) = (name.clone(), name);
    view! {
        <article class="card" data-file=file data-framing=framing_attr>
            <div class="pictures">{photo}</div>
            <FramingTools reframer />
            <h3 class="file">{title}</h3>
            {body}
        </article>
    }
}

#[component]
fn Prediction(classified: Classified, card: Card) -> impl IntoView {
    let state = expect_context::<crate::state::AppState>();
    let heat = card.heat;
    let asked = RwSignal::new(false);
    let why = {
        let pixels = classified.pixels.clone();
        move |_| {
            if heat.get_untracked().is_some() {
                heat.set(None);
                asked.set(false);
            } else if !asked.get_untracked() {
                asked.set(true);
                state.explain(card.clone(), pixels.clone());
            }
        }
    };
    let why_label = move || match (heat.get().is_some(), asked.get()) {
        (true, _) => "Hide why",
        (false, true) => "Working out why…",
        (false, false) => "Why?",
    };
    // Names are read from the class list, so that a renamed class shows its new name at once.
    let name_of = move |label: usize| state.classes.with(|c| c.name(label));
    let label = argmax(&classified.scores.cnn);
    let confidence = classified.scores.cnn[label];
    let class = Signal::derive(move || name_of(label));
    // After the model changed: what the previous model said, beside the new answer.
    let before = classified.before.clone().map(|(was, p)| {
        let changed = Signal::derive({
            let was = was.clone();
            move || was != class.get()
        });
        view! {
            <p class="before" data-testid="before" data-class=was.clone() data-changed=move || changed.get().to_string()>
                {format!("Previous model: {was} {:.1}% ", 100.0 * p)}
                {move || if changed.get() { "(changed)" } else { "(unchanged)" }}
            </p>
        }
    });
    // The baseline's ten classes are the list's first ten.
    let baseline = classified.scores.baseline.clone().map(|probs| {
        let label = argmax(&probs);
        let (class, confidence) = (name_of(label), probs[label]);
        view! {
            <p class="baseline" title="The baseline knows only the ten Fashion-MNIST classes, not your own">
                "Logistic regression (the ten classes only): " <b>{class}</b> {format!(" ({:.1}%)", 100.0 * confidence)}
            </p>
        }
    });
    let sure = classified.scores.verdict.is_sure();
    let answer = match &classified.scores.verdict {
        Verdict::Sure { .. } => view! { <p class="answer"><b>{class}</b> {format!(" {:.1}%", 100.0 * confidence)}</p> }.into_any(),
        Verdict::Unsure { doubt, candidates } => {
            let why = match doubt {
                Doubt::LowConfidence => "the model hesitates between these",
                Doubt::UnlikeAnyGarment => {
                    "this does not look like the garments the model knows: one item, whole, on a plain background works best"
                }
            };
            let listed = candidates
                .iter()
                .map(|&(c, p)| view! { <li><b>{move || name_of(c)}</b> {format!(" {:.0}%", 100.0 * p)}</li> })
                .collect_view();
            view! {
                <div class="answer unsure" data-testid="unsure" data-doubt=format!("{doubt:?}")>
                    <p><b>"Not sure."</b> " Maybe:"</p>
                    <ol class="candidates">{listed}</ol>
                    <p class="why">{why}</p>
                </div>
            }
            .into_any()
        }
    };
    view! {
        <div
            class="prediction"
            data-testid="prediction"
            data-label=label.to_string()
            data-class=class
            data-confidence=confidence.to_string()
            data-sure=sure.to_string()
        >
            <div class="seen-frame">
                <Seen pixels=classified.pixels.clone() />
                {move || heat.get().map(|values| view! { <HeatCanvas values class="heat-on-seen" style=String::new() /> })}
            </div>
            {answer}
            <button
                type="button"
                class="button why"
                data-testid="why"
                aria-pressed=move || heat.get().is_some().to_string()
                title="Show which parts of the picture the answer rests on"
                on:click=why
            >
                {why_label}
            </button>
            {before}
            <Bars probs=Some(classified.scores.cnn.clone()) />
            {baseline}
        </div>
    }
}

/// The probability of each class the model answers with as a bar, the most likely one
/// marked; all empty while `probs` is `None` (the camera before its first answer).
#[component]
pub(super) fn Bars(#[prop(into)] probs: Signal<Option<Vec<f32>>>) -> impl IntoView {
    let state = expect_context::<crate::state::AppState>();
    let count = move || probs.with(|p| p.as_ref().map(Vec::len)).unwrap_or_else(|| state.classes.with(|c| c.learnt()));
    let bar = move |i: usize| {
        let p = move || probs.with(|p| p.as_ref().and_then(|p| p.get(i).copied()).unwrap_or(0.0));
        view! {
            <li class:top=move || probs.with(|p| p.as_ref().is_some_and(|p| argmax(p) == i))>
                <span class="name">{move || state.classes.with(|c| c.name(i))}</span>
                <meter min="0" max="1" value=move || p().to_string()></meter>
                <span class="pct">{move || format!("{:.1}%", 100.0 * p())}</span>
            </li>
        }
    };
    view! {
        <ol class="bars" aria-label="probability of each class">
            <For each=move || 0..count() key=|i| *i children=bar />
        </ol>
    }
}

/// "Teach": the class the photo really shows, which adds it to the fine-tuning set; once
/// taught, "held out" keeps it to measure the fine-tuned model on rather than to learn from.
#[component]
fn Teach(teach: RwSignal<Option<u8>>, held_out: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="teach">
            "Teach: "
            <ClassSelect value=teach none_label="— not used for training —" testid="teach" />
        </label>
        <Show when=move || teach.get().is_some()>
            <label class="held-out" title="Fine-tuning does not learn from this photo; it measures the model on it, before and after">
                <input
                    type="checkbox"
                    data-testid="held-out"
                    prop:checked=move || held_out.get()
                    on:change=move |event| held_out.set(event_target_checked(&event))
                />
                " held out (only to measure)"
            </label>
        </Show>
    }
}

/// A 28×28 heatmap (0..=1) drawn as translucent red, stretched over what it explains. The
/// element is named for tests: `data-testid="heat"`, with the values' sum in `data-sum`.
#[component]
fn HeatCanvas(values: Vec<f32>, class: &'static str, style: String) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    let sum: f32 = values.iter().sum();
    let hottest = values.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0;
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let rgba: Vec<u8> = values.iter().flat_map(|&h| [230, 30, 20, (h.clamp(0.0, 1.0) * 200.0) as u8]).collect();
        browser::draw_rgba(&canvas, &rgba, IMAGE_SIDE as u32, IMAGE_SIDE as u32);
    });
    view! {
        <canvas
            class=format!("heat {class}")
            style=style
            width="28"
            height="28"
            node_ref=canvas
            data-testid="heat"
            data-sum=sum.to_string()
            data-hottest=hottest.to_string()
            role="img"
            aria-label="heatmap: the red parts drove the answer most"
        ></canvas>
    }
}

/// The 28×28 model input drawn large and pixelated, light item on black as in Fashion-MNIST;
/// redrawn when `pixels` changes (the camera's live input).
#[component]
pub(super) fn Seen(#[prop(into)] pixels: Signal<Vec<f32>>) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let rgba: Vec<u8> = pixels
            .get()
            .iter()
            .flat_map(|&v| {
                let g = (v * 255.0).round().clamp(0.0, 255.0) as u8;
                [g, g, g, 255]
            })
            .collect();
        browser::draw_rgba(&canvas, &rgba, IMAGE_SIDE as u32, IMAGE_SIDE as u32);
    });
    view! {
        <canvas class="seen" width="28" height="28" node_ref=canvas role="img" aria-label="the 28×28 image the model sees"></canvas>
    }
}
