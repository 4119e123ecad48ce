use leptos::prelude::*;

use fashion_engine::BackendKind;

use crate::state::AppState;

/// Names the backend in use and, on the CPU, why (`data-pending` while WebGPU is still
/// starting); shows `ready` once the model can answer.
#[component]
pub fn BackendBadge() -> impl IntoView {
    let state = expect_context::<AppState>();
    let kind = move || state.router.status.get().kind;
    view! {
        <p class="status" aria-live="polite">
            <span
                class="badge"
                class:gpu=move || kind() == Some(BackendKind::WebGpu)
                data-testid="backend"
                data-backend=move || kind().map(|k| k.label().to_lowercase()).unwrap_or_default()
                data-pending=move || state.router.status.get().pending.then_some("true")
            >
                {move || {
                    let status = state.router.status.get();
                    match status.kind {
                        Some(kind) => format!("{} · {}", kind.label(), status.detail),
                        None => format!("Backend: {}", status.detail),
                    }
                }}
            </span>
            {move || state.ready.get().then(|| view! { <span class="ready" data-testid="ready">"Ready"</span> })}
        </p>
    }
}
