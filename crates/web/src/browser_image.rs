//! Pictures only the browser can decode: AVIF (every current browser) and HEIC (Safari) are
//! formats the model crate's decoder does not read. Where the browser can, it decodes them
//! (`createImageBitmap`, EXIF orientation applied, drawn on an `OffscreenCanvas`) and hands the
//! pixels to the same preprocessing; where it cannot, the model crate's message stands ("AVIF
//! images are not supported…"). Shared by the decoding worker (`bin/decoder.rs`, which includes
//! this file) and the page's own fallback (`decoder.rs`); both scopes have these APIs.

use fashion_model::{DecodeLimits, FramedPhoto, Framing, PreprocessError, preprocess_framed, preprocess_framed_image};
use image::{DynamicImage, RgbaImage};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `file` (its contents `bytes`) decoded, re-framed and preprocessed: by the model crate, or
/// where it refuses the format, by the browser's decoder and then the same preprocessing.
/// `Err` holds the message for the card.
pub async fn preprocess(file: &web_sys::Blob, bytes: &[u8], framing: &Framing) -> Result<FramedPhoto, String> {
    let limits = DecodeLimits::default();
    match preprocess_framed(bytes, limits, framing) {
        Err(e) if browser_may_decode(&e) => preprocess_framed_image(&decode(file, limits, &e).await?, framing),
        other => other,
    }
    .map_err(|e| e.to_string())
}

/// Whether the model crate refused a file for its format, and the browser may read it.
fn browser_may_decode(error: &PreprocessError) -> bool {
    matches!(error, PreprocessError::Unsupported("AVIF" | "HEIC/HEIF"))
}

/// Decodes `file` with the browser, within `limits`. `Err` holds the message for the card:
/// `refused` (the model crate's own message) when the browser cannot read it either.
async fn decode(file: &web_sys::Blob, limits: DecodeLimits, refused: &PreprocessError) -> Result<DynamicImage, String> {
    let cannot = || refused.to_string();
    let global = js_sys::global();
    let create: Function = Reflect::get(&global, &"createImageBitmap".into()).ok().and_then(|f| f.dyn_into().ok()).ok_or_else(cannot)?;
    let promise: Promise = create.call1(&global, file).ok().and_then(|p| p.dyn_into().ok()).ok_or_else(cannot)?;
    let bitmap: web_sys::ImageBitmap = JsFuture::from(promise).await.ok().and_then(|b| b.dyn_into().ok()).ok_or_else(cannot)?;
    let (width, height) = (bitmap.width(), bitmap.height());
    let too_large = width > limits.max_side || height > limits.max_side || width as u64 * height as u64 * 4 > limits.max_bytes;
    if too_large {
        bitmap.close();
        return Err(PreprocessError::TooLarge { width, height, max: limits.max_side }.to_string());
    }
    let pixels = draw(&bitmap, width, height);
    bitmap.close();
    let rgba = pixels.map_err(|e| format!("the browser decoded the picture but could not hand over its pixels ({e:?})"))?;
    RgbaImage::from_raw(width, height, rgba).map(DynamicImage::ImageRgba8).ok_or_else(cannot)
}

fn draw(bitmap: &web_sys::ImageBitmap, width: u32, height: u32) -> Result<Vec<u8>, JsValue> {
    let canvas = web_sys::OffscreenCanvas::new(width, height)?;
    let context: web_sys::OffscreenCanvasRenderingContext2d =
        canvas.get_context("2d")?.ok_or_else(|| JsValue::from_str("no 2d context"))?.dyn_into()?;
    context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0)?;
    Ok(context.get_image_data(0.0, 0.0, width as f64, height as f64)?.data().0)
}
