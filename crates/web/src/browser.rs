//! Thin wrappers over browser APIs the app needs: fetch, the address's query string,
//! downloads, files, canvases. The clock, yielding and JavaScript errors are the engine's
//! (`fashion_engine::js`), re-exported here.

pub use fashion_engine::js::{js_error, sleep_ms, yield_now};
use js_sys::Uint8Array;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;

fn window() -> web_sys::Window {
    web_sys::window().expect("the app runs in a browser window")
}

/// GETs a file served beside the page.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response =
        JsFuture::from(window().fetch_with_str(url)).await.map_err(|e| format!("{url}: the request failed ({})", js_error(e)))?;
    let response: web_sys::Response = response.dyn_into().map_err(js_error)?;
    if !response.ok() {
        return Err(format!("{url}: the server answered HTTP {}", response.status()));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(|e| format!("{url}: the download was cut short ({})", js_error(e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A parameter of the page's address (`?backend=cpu`).
pub fn query_param(name: &str) -> Option<String> {
    let search = window().location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    params.get(name)
}

/// A named point on the page's performance timeline.
pub fn mark(name: &str) {
    if let Some(performance) = window().performance() {
        let _ = performance.mark(name);
    }
}

/// Offers `bytes` as a file download.
pub fn download(bytes: &[u8], file_name: &str) -> Result<(), String> {
    let array = Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(js_error)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_error)?;
    let document = window().document().ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document.create_element("a").map_err(js_error)?.unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// The files chosen in the file input that fired `event`; the input is then emptied, so that
/// choosing the same file again fires again.
pub fn take_chosen_files(event: &web_sys::Event) -> Vec<web_sys::File> {
    let Some(input) = event.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return Vec::new() };
    let files = files_of(input.files());
    input.set_value("");
    files
}

/// The files in a list (a file input's, a drop's, a paste's).
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// The bytes of a file the user picked, dropped or pasted.
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    gloo_file::futures::read_as_bytes(&gloo_file::File::from(file.clone())).await.map_err(|e| format!("cannot read the file: {e}"))
}

/// Draws `width × height` RGBA pixels at the canvas's top-left corner (the canvas scales them
/// with CSS); a canvas that cannot draw is left blank.
pub fn draw_rgba(canvas: &web_sys::HtmlCanvasElement, rgba: &[u8], width: u32, height: u32) {
    let Ok(image) = web_sys::ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), width, height) else { return };
    if let Ok(Some(ctx)) = canvas.get_context("2d") {
        let ctx: web_sys::CanvasRenderingContext2d = ctx.unchecked_into();
        let _ = ctx.put_image_data(&image, 0.0, 0.0);
    }
}

/// A `File` holding `bytes`, as if the user had picked it.
pub fn file(bytes: &[u8], name: &str, mime: &str) -> Result<web_sys::File, String> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let options = web_sys::FilePropertyBag::new();
    options.set_type(mime);
    web_sys::File::new_with_u8_array_sequence_and_options(&parts, name, &options).map_err(js_error)
}

/// A JPEG of the picture in `file`, at most `max_side` pixels a side, drawn by the browser
/// (which applies EXIF orientation and reads every format the page does).
pub async fn thumbnail_jpeg(file: &web_sys::Blob, max_side: u32) -> Result<Vec<u8>, String> {
    let bitmap: web_sys::ImageBitmap = JsFuture::from(window().create_image_bitmap_with_blob(file).map_err(js_error)?)
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    let (width, height) = (bitmap.width().max(1), bitmap.height().max(1));
    let scale = (max_side as f64 / width.max(height) as f64).min(1.0);
    let (w, h) = (((width as f64 * scale).round() as u32).max(1), ((height as f64 * scale).round() as u32).max(1));
    let drawn = (|| {
        let canvas = web_sys::OffscreenCanvas::new(w, h)?;
        let context: web_sys::OffscreenCanvasRenderingContext2d =
            canvas.get_context("2d")?.ok_or_else(|| wasm_bindgen::JsValue::from_str("no 2d context"))?.dyn_into()?;
        context.draw_image_with_image_bitmap_and_dw_and_dh(&bitmap, 0.0, 0.0, w as f64, h as f64)?;
        Ok::<_, wasm_bindgen::JsValue>(context.get_image_data(0.0, 0.0, w as f64, h as f64)?.data().0)
    })();
    bitmap.close();
    let rgba = image::RgbaImage::from_raw(w, h, drawn.map_err(js_error)?).ok_or("the browser handed over too few pixels")?;
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgba8(rgba)
        .to_rgb8()
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    Ok(jpeg)
}
