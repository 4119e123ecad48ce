use fashion_gallery::{CardResult, FineTunePhase};
use fashion_model::finetune::TrainableLayers;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{classes::OwnClasses, project::ProjectFile};
use crate::state::AppState;

fn pct(x: f64) -> String {
    if x.is_nan() { "–".into() } else { format!("{:.1}%", 100.0 * x) }
}

/// "Teach it your clothes": the labelled photos, the Fine-tune button, progress, the live
/// loss chart, the before/after figures, download / reset of the fine-tuned model, and the
/// project file.
#[component]
pub fn FineTune() -> impl IntoView {
    let state = expect_context::<AppState>();
    let running = move || state.tuning.with(|run| run.is_running());
    let taught = move || {
        state
            .cards()
            .into_iter()
            .filter_map(|card| {
                let label = card.teach.get()?;
                matches!(card.result.get(), CardResult::Done(_)).then_some((card, label))
            })
            .collect::<Vec<_>>()
    };
    // Photos learnt from and held out, counted once per change of the teaching set (the button's
    // state and label both read them; the list above them reads `taught` itself).
    let counts = Memo::new(move |_| {
        let taught = taught();
        let held = taught.iter().filter(|(card, _)| card.held_out.get()).count();
        (taught.len() - held, held)
    });
    let learnt_from = move || counts.get().0;
    let fine_tuned = move || state.models.get().cnn.is_some_and(|m| m.summary.fine_tuned == Some(true));

    view! {
        <section class="finetune" aria-labelledby="finetune-title">
            <h2 id="finetune-title">"Teach it your clothes"</h2>
            <p class="hint">
                "Under any photo, choose the class it really shows (“Teach”); then fine-tune. Training runs in this tab; your photos stay on this device."
            </p>
            <OwnClasses />
            <ul class="taught" aria-label="photos to learn from">
                <For each=taught key=|(card, label)| (card.id, *label) let:item>
                    <li>
                        {item.0.name.clone()} " → " <b>{move || state.classes.with(|c| c.name(item.1 as usize))}</b>
                        {let held_out = item.0.held_out; move || held_out.get().then_some(" (held out)")}
                        <button class="link" on:click=move |_| item.0.teach.set(None)>"remove"</button>
                    </li>
                </For>
            </ul>
            <div class="tools">
                <button
                    class="button primary"
                    data-testid="finetune"
                    disabled=move || running() || learnt_from() == 0
                    on:click=move |_| state.fine_tune()
                >
                    {move || match counts.get() {
                        (learnt, 0) => format!("Fine-tune on {learnt} photo(s)"),
                        (learnt, held) => format!("Fine-tune on {learnt} photo(s), {held} held out"),
                    }}
                </button>
                {move || running().then(|| view! {
                    <button class="button" data-testid="finetune-cancel" on:click=move |_| state.cancel_fine_tuning()>"Cancel"</button>
                })}
                {move || fine_tuned().then(|| view! {
                    <button class="button" data-testid="download-weights" on:click=move |_| state.download_weights()>"Download weights"</button>
                    <button class="button" data-testid="reset-model" on:click=move |_| state.reset_model()>"Reset to the shipped model"</button>
                })}
            </div>
            <ProjectFile />
            <Advanced />
            {move || match state.tuning.get().phase {
                FineTunePhase::Idle => ().into_any(),
                FineTunePhase::Running { step, steps } => view! {
                    <p class="progress">
                        <progress max=steps.to_string() value=step.to_string() data-testid="finetune-progress"></progress>
                        {format!(" step {step} of {steps}")}
                    </p>
                }.into_any(),
                FineTunePhase::Cancelled => view! { <p role="status">"Fine-tuning cancelled; the model is unchanged."</p> }.into_any(),
                FineTunePhase::Failed(e) => view! { <p class="error" data-testid="error" role="alert">{format!("Fine-tuning failed: {e}. The model is unchanged.")}</p> }.into_any(),
                FineTunePhase::Done { report: r, held_out } => view! {
                    <div
                        class="tuned"
                        data-testid="finetune-done"
                        data-heldout-before=r.heldout_before.to_string()
                        data-heldout-after=r.heldout_after.to_string()
                        data-user-before=r.user_before.to_string()
                        data-user-after=r.user_after.to_string()
                        data-user-images=r.user_images.to_string()
                        data-user-heldout-images=held_out.map_or(0, |h| h.images).to_string()
                        data-user-heldout-before=held_out.map(|h| h.before.to_string())
                        data-user-heldout-after=held_out.map(|h| h.after.to_string())
                    >
                        <table>
                            <thead><tr><th></th><th>"Before"</th><th>"After"</th></tr></thead>
                            <tbody>
                                <tr><th scope="row">{format!("Your {} photo(s) learnt from", r.user_images)}</th><td>{pct(r.user_before)}</td><td>{pct(r.user_after)}</td></tr>
                                {held_out.map(|h| view! {
                                    <tr><th scope="row">{format!("Your {} held-out photo(s)", h.images)}</th><td>{pct(h.before)}</td><td>{pct(h.after)}</td></tr>
                                })}
                                <tr><th scope="row">{format!("{} held-out test images", r.heldout_images)}</th><td>{pct(r.heldout_before)}</td><td>{pct(r.heldout_after)}</td></tr>
                            </tbody>
                        </table>
                        <p class="hint">{format!("{} steps in {:.1} s ({:.0} images/s). Saved in this browser.", r.steps, r.seconds, r.images_per_second)}</p>
                    </div>
                }.into_any(),
            }}
            <LossChart />
        </section>
    }
}

/// The loss of every step so far, as a line.
#[component]
fn LossChart() -> impl IntoView {
    let state = expect_context::<AppState>();
    let points = move || {
        state.tuning.with(|run| {
            let losses = &run.losses;
            let max = losses.iter().copied().fold(0.0f32, f32::max).max(1e-6);
            let n = losses.len().max(2) - 1;
            losses
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{:.1},{:.1}", 300.0 * i as f32 / n as f32, 95.0 - 90.0 * l / max))
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    move || {
        (!state.tuning.with(|run| run.losses.is_empty())).then(|| view! {
            <figure class="loss">
                <svg viewBox="0 0 300 100" role="img" aria-label="training loss per step">
                    <polyline points=points fill="none" stroke="#1f5fbf" stroke-width="1.5"></polyline>
                </svg>
                <figcaption>{move || format!("Loss per step (last {:.3})", state.tuning.with(|run| run.losses.last().copied().unwrap_or_default()))}</figcaption>
            </figure>
        })
    }
}

/// Which layers train, learning rate, steps, photos per batch.
#[component]
fn Advanced() -> impl IntoView {
    let state = expect_context::<AppState>();
    let config = state.tune_config;
    let number = |event: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event.target().unwrap().unchecked_into();
        input.value().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0)
    };
    view! {
        <details class="advanced">
            <summary>"Advanced settings"</summary>
            <label>"Steps "
                <input type="number" min="1" max="5000" prop:value=move || config.get().steps.to_string()
                    on:change=move |e| if let Some(v) = number(e) { config.update(|c| c.steps = (v as usize).clamp(1, 5000)) } />
            </label>
            <label>"Learning rate "
                <input type="number" min="0.000001" max="0.1" step="any" prop:value=move || config.get().learning_rate.to_string()
                    on:change=move |e| if let Some(v) = number(e) { config.update(|c| c.learning_rate = v.min(0.1)) } />
            </label>
            <label>"Your photos per batch of 32 "
                <input type="number" min="1" max="32" prop:value=move || config.get().user_per_batch.to_string()
                    on:change=move |e| if let Some(v) = number(e) { config.update(|c| c.user_per_batch = (v as usize).clamp(1, c.batch_size)) } />
            </label>
            <label>"Train "
                <select on:change=move |e| {
                    let select: web_sys::HtmlSelectElement = e.target().unwrap().unchecked_into();
                    let layers = if select.value() == "all" { TrainableLayers::All } else { TrainableLayers::Head };
                    config.update(|c| c.layers = layers);
                }>
                    <option value="head" selected=move || config.get().layers == TrainableLayers::Head>"the dense layers only (recommended)"</option>
                    <option value="all" selected=move || config.get().layers == TrainableLayers::All>"every layer"</option>
                </select>
            </label>
        </details>
    }
}
