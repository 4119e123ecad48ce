//! The browser's camera: asking for it (`getUserMedia`, the rear camera on phones), showing it
//! in a `<video>`, cutting the guide square out of the current frame, and letting it go.

use fashion_gallery::{CameraError, camera::guide_square};
use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue, prelude::Closure};
use wasm_bindgen_futures::JsFuture;

use crate::browser::js_error;

/// Side of the square the live preprocessing works on: the browser scales the guide square to
/// it while drawing, which is far cheaper than decoding a full frame, and 28 px of output
/// cannot use more.
const LIVE_SIDE: u32 = 256;
/// Side of a snapped or recorded frame's picture (the card shows it and may re-frame it).
const SNAP_SIDE: u32 = 480;

/// A camera given to the page, shown in `video`.
pub struct Stream {
    stream: web_sys::MediaStream,
    video: web_sys::HtmlVideoElement,
    /// Where the live frames are drawn and read back (kept: one allocation per session, not
    /// per frame).
    live: web_sys::OffscreenCanvasRenderingContext2d,
    _on_ended: Closure<dyn Fn()>,
}

/// Asks for the camera and shows it in `video`; `on_ended` runs if it stops by itself
/// (unplugged, switched off, taken by the system).
pub async fn open(video: web_sys::HtmlVideoElement, on_ended: impl Fn() + 'static) -> Result<Stream, CameraError> {
    let window = web_sys::window().ok_or(CameraError::Unsupported)?;
    // Absent outside secure contexts (plain http:// other than localhost).
    let devices = window.navigator().media_devices().map_err(|_| CameraError::Unsupported)?;
    if devices.is_undefined() {
        return Err(CameraError::Unsupported);
    }
    let constraints = web_sys::MediaStreamConstraints::new();
    constraints.set_video(&video_constraints());
    constraints.set_audio(&JsValue::FALSE);
    let promise = devices.get_user_media_with_constraints(&constraints).map_err(dom_error)?;
    let stream: web_sys::MediaStream = JsFuture::from(promise).await.map_err(dom_error)?.unchecked_into();
    let on_ended = Closure::<dyn Fn()>::new(on_ended);
    for track in stream.get_video_tracks().iter() {
        track.unchecked_into::<web_sys::MediaStreamTrack>().set_onended(Some(on_ended.as_ref().unchecked_ref::<Function>()));
    }
    video.set_muted(true);
    video.set_src_object(Some(&stream));
    let live = live_context().map_err(|e| CameraError::Other(js_error(e)))?;
    let opened = Stream { stream, video, live, _on_ended: on_ended };
    let playing = opened.video.play().map_err(|e| CameraError::Other(js_error(e)))?;
    if let Err(e) = JsFuture::from(playing).await {
        opened.close();
        return Err(CameraError::Other(format!("the video did not play ({})", js_error(e))));
    }
    Ok(opened)
}

/// A canvas for the live frames, told that it is read back every frame (so the browser keeps
/// it in memory rather than on the GPU).
fn live_context() -> Result<web_sys::OffscreenCanvasRenderingContext2d, JsValue> {
    let canvas = web_sys::OffscreenCanvas::new(LIVE_SIDE, LIVE_SIDE)?;
    let options = js_sys::Object::new();
    Reflect::set(&options, &"willReadFrequently".into(), &JsValue::TRUE)?;
    canvas
        .get_context_with_context_options("2d", &options)?
        .ok_or_else(|| JsValue::from_str("no 2d context"))?
        .dyn_into()
        .map_err(JsValue::from)
}

/// The rear camera where there is one (phones), any camera elsewhere; HD at most.
fn video_constraints() -> JsValue {
    let ideal = |value: JsValue| {
        let o = js_sys::Object::new();
        let _ = Reflect::set(&o, &"ideal".into(), &value);
        o
    };
    let video = js_sys::Object::new();
    let _ = Reflect::set(&video, &"facingMode".into(), &ideal("environment".into()));
    let _ = Reflect::set(&video, &"width".into(), &ideal(1280.into()));
    let _ = Reflect::set(&video, &"height".into(), &ideal(720.into()));
    video.into()
}

fn dom_error(error: JsValue) -> CameraError {
    let name = Reflect::get(&error, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    let message = Reflect::get(&error, &"message".into()).ok().and_then(|m| m.as_string()).unwrap_or_default();
    CameraError::from_dom(&name, &message)
}

impl Stream {
    /// Draws the guide square of the current frame onto `context`, `side` px a side; `Err`
    /// before the first frame arrived.
    fn draw_guide(&self, context: &web_sys::OffscreenCanvasRenderingContext2d, side: f64) -> Result<(), String> {
        let (width, height) = (self.video.video_width(), self.video.video_height());
        if width == 0 || height == 0 {
            return Err("the camera has not shown a frame yet".into());
        }
        let (left, top, square) = guide_square(width, height);
        context
            .draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
                &self.video,
                left,
                top,
                square,
                square,
                0.0,
                0.0,
                side,
                side,
            )
            .map_err(js_error)
    }

    /// The guide square of the current frame, `LIVE_SIDE` px a side, as RGBA; `None` before the
    /// first frame arrived.
    pub fn live_square(&self) -> Option<image::RgbaImage> {
        let s = f64::from(LIVE_SIDE);
        self.draw_guide(&self.live, s).ok()?;
        let data = self.live.get_image_data(0.0, 0.0, s, s).ok()?.data().0;
        image::RgbaImage::from_raw(LIVE_SIDE, LIVE_SIDE, data)
    }

    /// The guide square of the current frame as a JPEG file named `name`, for a card.
    pub async fn snapshot(&self, name: &str) -> Result<web_sys::File, String> {
        let (_, _, square) = guide_square(self.video.video_width(), self.video.video_height());
        let out = SNAP_SIDE.min(square as u32).max(1);
        let canvas = web_sys::OffscreenCanvas::new(out, out).map_err(js_error)?;
        let context: web_sys::OffscreenCanvasRenderingContext2d =
            canvas.get_context("2d").map_err(js_error)?.ok_or("no 2d context")?.dyn_into().map_err(|e| js_error(e.into()))?;
        self.draw_guide(&context, f64::from(out))?;
        let options = web_sys::ImageEncodeOptions::new();
        options.set_type("image/jpeg");
        options.set_quality(0.92);
        let blob = JsFuture::from(canvas.convert_to_blob_with_options(&options).map_err(js_error)?).await.map_err(js_error)?;
        let file_options = web_sys::FilePropertyBag::new();
        file_options.set_type("image/jpeg");
        web_sys::File::new_with_blob_sequence_and_options(&js_sys::Array::of1(&blob), name, &file_options).map_err(js_error)
    }

    /// Waits for the camera's next frame (`requestVideoFrameCallback`), or for the next frame
    /// the browser draws where that is missing; never more than 250 ms, so that a paused video
    /// cannot hold the frame loop.
    pub async fn next_frame(&self) {
        let mut resolve = None;
        let promise = js_sys::Promise::new(&mut |ok, _| resolve = Some(ok));
        let Some(resolve) = resolve else { return };
        let on_frame = Reflect::get(&self.video, &"requestVideoFrameCallback".into()).ok().and_then(|f| f.dyn_into::<Function>().ok());
        let asked = on_frame.is_some_and(|f| f.call1(&self.video, &resolve).is_ok());
        let window = web_sys::window().expect("the camera runs in a window");
        if !asked {
            let _ = window.request_animation_frame(&resolve);
        }
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 250);
        let _ = JsFuture::from(promise).await;
    }

    /// Lets the camera go (its light turns off) and empties the video.
    pub fn close(&self) {
        for track in self.stream.get_tracks().iter() {
            let track: web_sys::MediaStreamTrack = track.unchecked_into();
            track.set_onended(None);
            track.stop();
        }
        self.video.set_src_object(None);
    }
}
