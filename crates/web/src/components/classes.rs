//! "Your classes": add a class by name, see how many photos teach each and whether the model
//! has learnt it, rename or remove it. The rules and messages are `fashion_gallery::ClassList`'s.

use leptos::{ev::SubmitEvent, prelude::*};

use crate::state::AppState;

#[component]
pub fn OwnClasses() -> impl IntoView {
    let state = expect_context::<AppState>();
    let new_name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let add = move |event: SubmitEvent| {
        event.prevent_default();
        match state.add_class(&new_name.get_untracked()) {
            Ok(()) => {
                new_name.set(String::new());
                error.set(None);
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };
    let counts = Memo::new(move |_| state.photos_per_class());
    let own = move || state.classes.with(|c| (fashion_model::NUM_CLASSES..c.len()).collect::<Vec<_>>());
    view! {
        <div class="own-classes">
            <h3>"Your classes"</h3>
            <p class="hint">
                "Besides the ten Fashion-MNIST classes, teach it your own: add a class, choose it under its photos (or record it from the camera), then fine-tune."
            </p>
            <ul data-testid="own-classes">
                // Keyed by label and name, so a rename or a removal redraws the rows it changes.
                <For
                    each=own
                    key=move |label| (*label, state.classes.with_untracked(|c| c.name(*label)))
                    children=move |label| view! { <ClassRow label counts error /> }
                />
            </ul>
            <form class="add-class" on:submit=add>
                <input
                    type="text"
                    data-testid="class-name"
                    placeholder="New class, e.g. Hat"
                    maxlength=fashion_model::classes::MAX_NAME_CHARS.to_string()
                    prop:value=move || new_name.get()
                    on:input=move |e| new_name.set(event_target_value(&e))
                />
                <button type="submit" class="button" data-testid="add-class">"Add class"</button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" data-testid="class-error" role="alert">{e}</p> })}
        </div>
    }
}

/// One class of the user's: its name, its photos, whether it is learnt; rename and remove.
#[component]
fn ClassRow(label: usize, counts: Memo<Vec<usize>>, error: RwSignal<Option<String>>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let name = move || state.classes.with(|c| c.name(label));
    let learnt = move || state.classes.with(|c| label < c.learnt());
    let photos = move || counts.with(|c| c.get(label).copied().unwrap_or(0));
    let renaming = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(false);
    let save = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(new) = renaming.get_untracked() else { return };
        match state.rename_class(label, &new) {
            Ok(()) => {
                renaming.set(None);
                error.set(None);
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };
    let remove = move |_| match state.remove_class(label) {
        Ok(()) => error.set(None),
        Err(e) => error.set(Some(e.to_string())),
    };
    view! {
        <li data-testid="own-class" data-name=name data-learnt=move || learnt().to_string() data-photos=move || photos().to_string()>
            {move || match renaming.get() {
                Some(_) => view! {
                    <form class="rename" on:submit=save>
                        <input
                            type="text"
                            data-testid="rename-input"
                            prop:value=move || renaming.get().unwrap_or_default()
                            on:input=move |e| renaming.set(Some(event_target_value(&e)))
                        />
                        <button type="submit" class="button" data-testid="rename-save">"Save"</button>
                        <button type="button" class="link" on:click=move |_| renaming.set(None)>"cancel"</button>
                    </form>
                }.into_any(),
                None => view! {
                    <b>{name}</b>
                    {move || format!(" {} photo(s), ", photos())}
                    {move || if learnt() { "learnt" } else { "not learnt yet: fine-tune to teach it" }}
                    <button type="button" class="link" data-testid="rename-class" on:click=move |_| renaming.set(Some(name()))>"rename"</button>
                    {move || if confirming.get() {
                        view! {
                            <span class="confirm">
                                {move || if learnt() { " The model forgets it; its photos are untaught. Remove?" } else { " Its photos are untaught. Remove?" }}
                                <button type="button" class="link" data-testid="remove-confirm" on:click=remove>"yes, remove"</button>
                                <button type="button" class="link" on:click=move |_| confirming.set(false)>"keep"</button>
                            </span>
                        }.into_any()
                    } else {
                        view! { <button type="button" class="link" data-testid="remove-class" on:click=move |_| confirming.set(true)>"remove"</button> }.into_any()
                    }}
                }.into_any(),
            }}
        </li>
    }
}
