use leptos::prelude::*;

use crate::state::{AppState, ModelInfo};

fn percent(x: Option<f64>) -> String {
    x.map(|a| format!("{:.2}%", 100.0 * a)).unwrap_or_else(|| "–".into())
}

fn row(role: &'static str, info: Option<ModelInfo>) -> impl IntoView {
    info.map(|m| {
        view! {
            <tr>
                <th scope="row">{role}</th>
                <td>{m.name}</td>
                <td class="num">{percent(m.summary.test_accuracy)}</td>
                <td class="num">{m.params.to_string()}</td>
                <td>{if m.summary.fine_tuned == Some(true) { "fine-tuned in the browser" } else { "shipped" }}</td>
            </tr>
        }
    })
}

/// The models' figures and the trainer's report pictures.
#[component]
pub fn About() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <details class="about">
            <summary>"About the model"</summary>
            <p>
                "Trained on Fashion-MNIST (60,000 catalog images, 28×28 grey) by this project's trainer. "
                "Your photo is reduced to the same 28×28 form (shown on each card) before the network sees it. "
                "The network was also shown those images mirrored, tilted, in perspective, recoloured, drawn as flat "
                "icons and partly hidden, so that shoes pointing either way and drawings are recognised too; its "
                "confidence is calibrated on held-out images."
            </p>
            <table>
                <thead><tr><th></th><th>"Network"</th><th>"Test accuracy"</th><th>"Parameters"</th><th>"Weights"</th></tr></thead>
                <tbody>
                    {move || row("Main", state.models.get().cnn)}
                    {move || row("Baseline", state.models.get().baseline)}
                </tbody>
            </table>
            <figure>
                <img src="report/learning-curves.svg" alt="Training and validation loss and accuracy per epoch" loading="lazy" />
                <figcaption>"Learning curves of the shipped models."</figcaption>
            </figure>
            <figure>
                <img src="report/confusion-matrix.svg" alt="Confusion matrix of the CNN on the test set" loading="lazy" />
                <figcaption>"Which classes the CNN confuses on the 10,000 test images."</figcaption>
            </figure>
        </details>
    }
}
