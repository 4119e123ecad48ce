//! The live camera: start and stop it, answer its frames one after the other as fast as the
//! backend allows (through the same router as photos), snap a frame into a card, and record
//! frames into the teaching set while "Record" is held. The rules (sessions, the answer rate,
//! when a recorded frame is due) are `fashion_gallery::Camera`'s; this file only does the
//! browser's part.

use std::rc::Rc;

use fashion_engine::{Scores, js::now_ms};
use fashion_gallery::{CameraError, MAX_TAUGHT, RecordError};
use fashion_model::preprocess_image;
use leptos::{prelude::*, task::spawn_local};

use super::{AppState, Card};
use crate::camera;

/// What the network made of the latest frame.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveAnswer {
    Answered {
        pixels: Vec<f32>,
        scores: Scores,
    },
    /// The frame could not be made into an input (nothing in the square): why, in words.
    NoInput(String),
}

impl AppState {
    /// Asks for the camera and shows it in `video`, then answers its frames until stopped.
    pub fn start_camera(self, video: web_sys::HtmlVideoElement) {
        let Some(session) = self.camera.try_update(|c| c.start()).flatten() else { return };
        self.live.set(None);
        spawn_local(async move {
            let on_ended = move || {
                self.close_stream();
                self.camera.update(|c| c.failed(session, CameraError::Ended));
            };
            match camera::open(video, on_ended).await {
                Ok(stream) => {
                    if !self.camera.try_update(|c| c.started(session)).unwrap_or(false) {
                        // Stopped while the browser was asking: let the camera go at once.
                        return stream.close();
                    }
                    self.stream.set_value(Some(Rc::new(stream)));
                    self.answer_frames(session).await;
                }
                Err(e) => self.camera.update(|c| c.failed(session, e)),
            }
        });
    }

    /// Stops the camera (its light goes off); the page goes on as before.
    pub fn stop_camera(self) {
        self.close_stream();
        self.camera.update(|c| c.stop());
        self.live.set(None);
    }

    fn close_stream(&self) {
        if let Some(stream) = self.stream.try_update_value(|s| s.take()).flatten() {
            stream.close();
        }
    }

    /// One frame after the other: cut the guide square, preprocess it as a photo, classify it,
    /// show the answer, and record it if "Record" is held; then wait for the camera's next
    /// frame (never answering the same frame twice).
    async fn answer_frames(self, session: u64) {
        while self.camera.with_untracked(|c| c.is_live(session)) {
            let Some(stream) = self.stream.get_value() else { break };
            let started = now_ms();
            if let Some(square) = stream.live_square() {
                let answer = match preprocess_image(&image::DynamicImage::ImageRgba8(square)) {
                    Ok(input) => match self.router.classify(&input.pixels).await {
                        Ok(mut scores) => LiveAnswer::Answered {
                            pixels: input.pixels.to_vec(),
                            scores: scores.remove(0).found_on_surface(input.on_surface),
                        },
                        Err(e) => LiveAnswer::NoInput(format!("classification failed: {e}")),
                    },
                    Err(e) => LiveAnswer::NoInput(e.to_string()),
                };
                // Stopped while classifying: the answer belongs to no session.
                if !self.camera.with_untracked(|c| c.is_live(session)) {
                    break;
                }
                let now = now_ms();
                self.live.set(Some(answer));
                let due = self.camera.try_update(|c| {
                    c.answered(now, now - started);
                    c.record_due(now)
                });
                if let Some(class) = due.flatten() {
                    self.record_frame(class).await;
                }
            }
            stream.next_frame().await;
        }
    }

    /// Makes a card of the current frame ("Snap"), answered as an uploaded photo would be.
    pub fn snap(self) {
        spawn_local(async move {
            if let Err(e) = self.add_snapshot(None).await {
                self.error.set(Some(format!("The frame could not be snapped: {e}")));
            }
        });
    }

    /// "Record" pressed with `class` chosen: frames join the teaching set, a few a second.
    pub fn hold_record(self, class: Option<u8>) -> Result<(), RecordError> {
        self.camera.try_update(|c| c.hold(class, now_ms())).unwrap_or(Err(RecordError::NotLive))
    }

    pub fn release_record(self) {
        self.camera.update(|c| c.release());
    }

    async fn record_frame(&self, class: u8) {
        let taught = self.gallery.with_untracked(|g| g.count(Card::is_taught));
        if taught >= MAX_TAUGHT {
            self.camera.update(|c| c.release());
            self.notice
                .set(Some(format!("Recording stopped: the teaching set is full ({MAX_TAUGHT} photos). Remove some, or fine-tune now.")));
            return;
        }
        if let Err(e) = self.add_snapshot(Some(class)).await {
            self.camera.update(|c| c.release());
            self.error.set(Some(format!("Recording stopped: {e}")));
        }
    }

    async fn add_snapshot(&self, teach: Option<u8>) -> Result<(), String> {
        let taken = self.gallery.with_untracked(|g| g.len()) + 1;
        let name = format!("camera-{taken}.jpg");
        let stream = self.stream.get_value().ok_or("the camera is off")?;
        let file = stream.snapshot(&name).await?;
        self.add_photos(vec![file], teach);
        Ok(())
    }
}
