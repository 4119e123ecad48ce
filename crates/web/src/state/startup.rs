//! Start-up: download the shipped models, restore the user's fine-tuned CNN if this browser
//! keeps one, answer on the CPU, then start the decoding worker and the WebGPU module.

use std::rc::Rc;

use fashion_engine::{Backend, BackendKind, Engine};
use leptos::{prelude::*, task::spawn_local};

use super::{AppState, BackendStatus};
use crate::{browser, decoder, storage};

impl AppState {
    /// Picks the backend, loads the shipped weights and warms the model up.
    pub fn start(self) {
        spawn_local(async move {
            if let Err(e) = self.try_start().await {
                self.router.status.update(|b| {
                    b.detail = "not ready".into();
                    b.pending = false;
                });
                self.error.set(Some(e));
                self.router.start_ended();
            }
        });
    }

    /// Answers on the CPU first, then moves to WebGPU once its module has loaded and started.
    async fn try_start(self) -> Result<(), String> {
        let want_gpu = browser::query_param("backend").as_deref() != Some("cpu");
        self.router.status.set(BackendStatus { kind: None, detail: "loading the model…".into(), pending: want_gpu });
        let cnn = browser::fetch_bytes("cnn.fmw")
            .await
            .map_err(|e| format!("The model could not be downloaded: {e}. Reload the page to try again."))?;
        let baseline = match browser::fetch_bytes("baseline.fmw").await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.notice.set(Some(format!("The logistic-regression baseline is unavailable ({e}).")));
                None
            }
        };
        self.shipped_cnn.set_value(Some(Rc::new(cnn.clone())));
        let reason = if want_gpu { "WebGPU is starting…" } else { "chosen in the address (?backend=cpu)" };
        let mut engine = Engine::load(Backend::cpu(reason), cnn, baseline).map_err(|e| format!("The shipped model is unusable: {e}"))?;
        // The user's fine-tuned model, if they made one in an earlier visit.
        match storage::get(storage::FINE_TUNED).await {
            Ok(Some(saved)) => match engine.with_weights(saved) {
                Ok(tuned) => {
                    engine = tuned;
                    self.notice.set(Some("Using your fine-tuned model, restored from this browser. “Reset” returns to the shipped one.".into()));
                }
                Err(e) => self.notice.set(Some(format!(
                    "Your saved fine-tuned model could not be loaded ({e}); using the shipped model. It is still stored: “Reset” deletes it."
                ))),
            },
            Ok(None) => {}
            Err(e) => self.notice.set(Some(format!("Saved models are unavailable: {e}."))),
        }
        engine.warm_up().await.map_err(|e| format!("The model failed to run: {e}"))?;
        // Before the model's classes are installed: installing saves the list it makes.
        self.restore_pending_classes().await;
        self.install(engine).await;
        self.router.status.set(BackendStatus { kind: Some(BackendKind::Cpu), detail: reason.into(), pending: want_gpu });
        self.ready.set(true);
        self.router.start_ended();
        // For the page benchmark: time from navigation to ready.
        browser::mark("fashion-ready");
        // Only now: the workers' and the WebGPU module's downloads must not delay the first answer.
        decoder::start();
        if want_gpu {
            self.router.start_gpu().await;
            if self.router.gpu().is_some() {
                browser::mark("fashion-webgpu-ready");
            }
        }
        Ok(())
    }
}
