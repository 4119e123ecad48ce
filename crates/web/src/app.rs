use leptos::prelude::*;

use crate::{
    components::{
        about::About,
        badge::BackendBadge,
        camera::CameraPanel,
        card::ResultCard,
        examples::Examples,
        finetune::FineTune,
        upload::Upload,
        weights::{DownloadOnnx, LoadWeights},
    },
    state::AppState,
};

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    #[cfg(feature = "test-hooks")]
    crate::hooks::register(state);
    state.start();

    view! {
        <header>
            <h1>"What's this garment?"</h1>
            <BackendBadge />
        </header>
        <main>
            {move || state.error.get().map(|e| view! { <p class="banner error" data-testid="error" role="alert">{e}</p> })}
            {move || state.notice.get().map(|n| view! { <p class="banner notice" role="status">{n}</p> })}
            <Upload />
            <CameraPanel />
            <Examples />
            <div class="tools"><LoadWeights /><DownloadOnnx /></div>
            <section class="gallery" aria-label="your photos, newest first">
                <For each=move || state.cards() key=|card| card.id let:card>
                    <ResultCard card />
                </For>
            </section>
            <FineTune />
            <About />
        </main>
        <footer>
            <p>"Runs entirely in this tab: photos are never uploaded anywhere."</p>
        </footer>
    }
}
