//! Photo → model input: the one implementation shared by `trainer predict` and the page.
//!
//! Fashion-MNIST was made from catalog photos by trimming the background (the colour of the
//! corners), resizing the longest edge to 28, sharpening, centring on a 28×28 canvas, negating
//! and converting to 8-bit grayscale. This module runs the same steps on a user's photo, so the
//! item reaches the network looking like a Fashion-MNIST image: a light item on black.
//!
//! The steps, in order:
//! 1. decode with limits (refusing decompression bombs before allocating), first frame of an
//!    animation, EXIF orientation applied; a large JPEG at a reduced scale;
//! 2. shrink huge photos to at most [`WORK_SIDE`] px (speed and bounded memory);
//! 3. flatten alpha onto a background that contrasts with the item, then grayscale (Rec. 601);
//! 4. estimate the background from the image border and turn each pixel into "ink": distance
//!    from the background, so light and dark backgrounds both give a light item on black;
//! 5. trim to the ink's bounding box, resize the longest edge to 28, sharpen, centre.

use std::io::Cursor;

use image::{
    DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Limits, Luma,
    imageops::{self, FilterType},
};

use crate::{IMAGE_PIXELS, IMAGE_SIDE, surface};

/// Formats we decode, for error messages.
pub const SUPPORTED_FORMATS: &str = "PNG, JPEG, WebP, GIF, BMP";

/// Longest side we work at after decoding; more detail than this cannot survive a 28 px output.
const WORK_SIDE: u32 = 1024;
/// A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps at least this many
/// pixels on its longest side: a 12-megapixel photo decodes at 1,000 px instead of 4,000, which
/// skips most of the decoding and all of the shrinking, and 28 px of output cannot tell.
const REDUCED_DECODE_SIDE: u32 = 768;
/// Smallest side that still holds a recognisable item.
pub(crate) const MIN_SIDE: u32 = 8;
/// Ink above this counts as "item" when finding the bounding box.
const INK_THRESHOLD: f32 = 0.09;
/// Ink below this is camera noise or a background gradient, and is cleared to black, as in
/// Fashion-MNIST where the background is exactly 0.
const NOISE_FLOOR: f32 = 0.04;
/// Ink level, as a percentile of the item's pixels, that the contrast stretch maps to 1.
const STRETCH_PERCENTILE: f32 = 0.99;
/// Never amplify ink more than 1 / this (a faint smudge must not become a bold item).
const MIN_STRETCH_REFERENCE: f32 = 0.3;
/// Strength of the unsharp mask applied after resizing (Fashion-MNIST's "sharpening").
const SHARPEN: f32 = 0.5;

/// Size limits for decoding untrusted files.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width or height accepted, in pixels.
    pub max_side: u32,
    /// Largest decoded image, in bytes.
    pub max_bytes: u64,
}

impl Default for DecodeLimits {
    /// 12,000 px a side and 512 MiB: a 48-megapixel phone photo fits, a 30,000² bomb does not.
    fn default() -> Self {
        Self { max_side: 12_000, max_bytes: 512 << 20 }
    }
}

/// Why a file could not be turned into a model input. Each message says what to do.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreprocessError {
    #[error("the file is empty")]
    Empty,
    #[error("{0} images are not supported; supported formats: {SUPPORTED_FORMATS}")]
    Unsupported(&'static str),
    #[error("not an image this app can read; supported formats: {SUPPORTED_FORMATS}")]
    UnknownFormat,
    #[error("the file says the image is {width}×{height} pixels, over the limit of {max} pixels a side; scale it down first")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("image would need more than {0} MiB to decode; scale it down first")]
    TooMuchMemory(u64),
    #[error("the {format} data is damaged or cut short ({detail}); try exporting the image again")]
    Corrupt { format: &'static str, detail: String },
    #[error("image is only {width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} is needed")]
    TooSmall { width: u32, height: u32 },
    #[error("no item found: the image is a single flat colour (blank, or fully transparent)")]
    NoItem,
    #[error("no item found on this surface: photograph the garment so that it fills much of the frame, or crop it")]
    NoItemOnSurface,
    #[error("the crop box is empty: drag across the item, or press Escape to keep the current framing")]
    EmptyCrop,
    #[error("the crop box is only {width}×{height} pixels of the photo; at least {MIN_SIDE}×{MIN_SIDE} is needed: drag a larger box")]
    CropTooSmall { width: u32, height: u32 },
}

/// A model input and what was learnt making it.
#[derive(Debug, Clone)]
pub struct Preprocessed {
    /// 28×28 row-major, 0 = background, 1 = full ink (Fashion-MNIST's `pixel / 255`).
    pub pixels: [f32; IMAGE_PIXELS],
    /// Size of the decoded image after EXIF rotation (a large JPEG's at its reduced scale).
    pub width: u32,
    pub height: u32,
    /// Whether the background was judged light (the usual catalog or phone shot).
    pub light_background: bool,
    /// Where the 28×28 frame lies on the (EXIF-rotated) image: left, top, width, height as
    /// fractions of the image's width and height (may reach past its edges: the frame is
    /// square). Used to lay the 28×28 heatmap over the photo.
    pub frame: [f32; 4],
    /// The region taken as the item: its bounding box as fractions of the image's width and
    /// height (left, top, width, height). The framing panel outlines it.
    pub item: [f32; 4],
    /// Whether the item was found on a textured or unevenly lit surface ([`crate::surface`])
    /// rather than on a plain backdrop.
    pub on_surface: bool,
}

impl Preprocessed {
    /// The model input as 8-bit grayscale, as Fashion-MNIST stores it (for display and tests).
    pub fn to_u8(&self) -> [u8; IMAGE_PIXELS] {
        self.pixels.map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
    }
}

/// Decodes an uploaded file and preprocesses it.
pub fn preprocess_bytes(bytes: &[u8], limits: DecodeLimits) -> Result<Preprocessed, PreprocessError> {
    let image = decode(bytes, limits)?;
    preprocess_image(&image)
}

/// Decodes an image file with limits and EXIF orientation applied.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<DynamicImage, PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| sniff_unsupported(bytes))?;
    let name = format_name(format);
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif | ImageFormat::Bmp) {
        return Err(PreprocessError::Unsupported(name));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a cut-short scan with grey and reports success; the user
        // would get a confident answer about half a photo. Refuse it instead.
        return Err(PreprocessError::Corrupt { format: name, detail: "no end-of-image marker".into() });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(limits.max_bytes);
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(e, bytes, format, limits))?;
    let (width, height) = decoder.dimensions();
    if width > limits.max_side || height > limits.max_side {
        return Err(PreprocessError::TooLarge { width, height, max: limits.max_side });
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let reduced = if format == ImageFormat::Jpeg { decode_jpeg_reduced(bytes, width.max(height)) } else { None };
    let mut image = match reduced {
        Some(image) => image,
        None => DynamicImage::from_decoder(decoder).map_err(|e| decode_error(e, bytes, format, limits))?,
    };
    image.apply_orientation(orientation);
    Ok(image)
}

/// A large JPEG decoded at reduced scale, or `None` where it is not large enough, its colour
/// model is not plain gray or RGB (CMYK), or this decoder fails: the full decoder then decodes it
/// and words any error as it always has.
fn decode_jpeg_reduced(bytes: &[u8], longest: u32) -> Option<DynamicImage> {
    let factor = [8, 4, 2].into_iter().find(|f| longest / f >= REDUCED_DECODE_SIDE)?;
    decode_jpeg_scaled(bytes, factor)
}

/// A JPEG decoded at 1/`factor` scale (2, 4 or 8), or `None` as for [`decode_jpeg_reduced`].
fn decode_jpeg_scaled(bytes: &[u8], factor: u32) -> Option<DynamicImage> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let wanted = |side: u32| u16::try_from(side.div_ceil(factor)).ok();
    decoder.scale(wanted(width)?, wanted(height)?).ok()?;
    let pixels = decoder.decode().ok()?;
    let info = decoder.info()?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        _ => None,
    }
}

/// The picture [`warm_up`] runs on: a dark T-shirt on a wooden floor lit from one side,
/// 768×576, 19 KB (made by a few lines of `image` code, as a JPEG of quality 50).
const WARM_UP_JPEG: &[u8] = include_bytes!("../assets/warm-up.jpg");

/// Runs the decoders and the preprocessing once on a built-in photo and discards the result:
/// the JPEG decoder at every reduced scale and at full size, the surface path and the plain
/// path. Why: a browser first runs WebAssembly through its baseline compiler and optimises a
/// function only after it has run for a while, so the first photo of a visit took about three
/// times as long as the next (`cargo xtask bench-page`). The page's decoding worker calls this
/// while the user is still choosing a photo. Returns whether the built-in photo took the surface
/// path, as it must to warm it.
pub fn warm_up() -> Result<bool, PreprocessError> {
    let unreadable = || PreprocessError::Corrupt { format: "JPEG", detail: "the built-in warm-up photo".into() };
    for factor in [2, 4, 8] {
        preprocess_image(&decode_jpeg_scaled(WARM_UP_JPEG, factor).ok_or_else(unreadable)?)?;
    }
    let full = decode(WARM_UP_JPEG, DecodeLimits::default())?;
    let on_surface = preprocess_image(&full)?.on_surface;
    // The plain path: a grey item on a white backdrop.
    let (w, h) = (full.width() / 2, full.height() / 2);
    let catalog = DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| {
        let central = (x as f32 / w as f32 - 0.5).abs() < 0.2 && (y as f32 / h as f32 - 0.5).abs() < 0.3;
        Luma([if central { 60 } else { 250 }])
    }));
    Ok(on_surface && !preprocess_image(&catalog)?.on_surface)
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Tga => "TGA",
        ImageFormat::Pnm => "PNM",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Hdr => "HDR",
        ImageFormat::Qoi => "QOI",
        ImageFormat::Dds => "DDS",
        ImageFormat::Farbfeld => "Farbfeld",
        _ => "this format's",
    }
}

/// Names formats `image` does not recognise but users commonly have, so the message is specific.
fn sniff_unsupported(bytes: &[u8]) -> PreprocessError {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if text.contains("<svg") || (text.trim_start().starts_with("<?xml") && text.contains("svg")) {
        return PreprocessError::Unsupported("SVG");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        if [&b"heic"[..], b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"].contains(&brand) {
            return PreprocessError::Unsupported("HEIC/HEIF");
        }
        if brand == b"avif" || brand == b"avis" {
            return PreprocessError::Unsupported("AVIF");
        }
    }
    PreprocessError::UnknownFormat
}

/// True if an end-of-image marker follows the last start-of-scan. Inside entropy-coded data
/// 0xFF is always stuffed (FF 00), so FF D9 there is a real marker.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let Some(sos) = last_sos else { return false };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn decode_error(error: image::ImageError, bytes: &[u8], format: ImageFormat, limits: DecodeLimits) -> PreprocessError {
    use image::error::{ImageError, LimitErrorKind};
    let name = format_name(format);
    match error {
        ImageError::Limits(e) => match e.kind() {
            LimitErrorKind::DimensionError => {
                // The limits stop the decoder before it reports the size; the header alone says
                // what the file claims, so the message can name it.
                let claimed = claimed_size(bytes, format);
                PreprocessError::TooLarge { width: claimed.0, height: claimed.1, max: limits.max_side }
            }
            _ => PreprocessError::TooMuchMemory(limits.max_bytes >> 20),
        },
        other => PreprocessError::Corrupt { format: name, detail: plain_words(&other.to_string()) },
    }
}

/// The size an image file's header claims, read without decoding (0×0 if unreadable).
fn claimed_size(bytes: &[u8], format: ImageFormat) -> (u32, u32) {
    // PNG's first chunk is IHDR, width and height first: the decoder would stop at damaged
    // data after it before saying the size.
    if format == ImageFormat::Png && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let be = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        return (be(16), be(20));
    }
    // Reading only the header allocates nothing, whatever it claims.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.no_limits();
    header.into_dimensions().unwrap_or((0, 0))
}

/// A decoder's message in a user's words: what is wrong with the file, without the decoder's
/// internal state (chunk dumps, struct names, byte offsets).
fn plain_words(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    let known = [
        (&["crc", "checksum", "adler"][..], "a checksum does not match: the file was changed or damaged after it was saved"),
        (
            &["unexpected end", "unexpectedeof", "eof", "no more data", "truncated", "cut short", "end of image", "end-of-image"][..],
            "the file ends too early",
        ),
        (&["deflate", "zlib", "decompress", "huffman", "lzw"][..], "the compressed picture data is damaged"),
        (&["signature", "magic"][..], "the file does not start as an image of its kind should"),
        (&["dimension", "width", "height", "zero"][..], "the picture's size in its header is invalid"),
    ];
    if let Some((_, words)) = known.iter().find(|(keys, _)| keys.iter().any(|k| lower.contains(k))) {
        return words.to_string();
    }
    // Unknown: keep the decoder's first phrase, cut before any internal dump.
    let phrase = raw.split(['{', '(', '[', ':']).next().unwrap_or(raw).trim();
    let phrase: String = phrase.chars().take(80).collect();
    if phrase.is_empty() { "the decoder could not read it".into() } else { phrase.to_lowercase() }
}

/// Turns a decoded image into a 28×28 model input.
pub fn preprocess_image(image: &DynamicImage) -> Result<Preprocessed, PreprocessError> {
    let (width, height) = (image.width(), image.height());
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(PreprocessError::TooSmall { width, height });
    }
    let work = if width.max(height) > WORK_SIDE { image.thumbnail(WORK_SIDE, WORK_SIDE) } else { image.clone() };
    // A textured or unevenly lit border is a surface, not a backdrop, and an item that differs
    // from it only in colour needs colour: find the item on it.
    let small =
        if width.max(height) > surface::SEGMENT_SIDE { work.thumbnail(surface::SEGMENT_SIDE, surface::SEGMENT_SIDE) } else { work.clone() };
    let (sw, sh) = (small.width() as usize, small.height() as usize);
    let small_rgb = flatten_to_rgb(&small.to_rgba32f());
    if !surface::is_catalog_shot(&small_rgb, sw, sh) {
        return preprocess_on_surface(&small_rgb, sw, sh, width, height);
    }
    let (w, h) = (work.width() as usize, work.height() as usize);
    let gray = flatten_to_gray(&work.to_rgba32f());

    let background = border_median(&gray, w, h);
    let light_background = background >= 0.5;
    let mut ink: Vec<f32> = gray
        .iter()
        .map(|&g| {
            let v =
                if light_background { (background - g) / background.max(1e-3) } else { (g - background) / (1.0 - background).max(1e-3) };
            v.clamp(0.0, 1.0)
        })
        .collect();

    let (x0, y0, x1, y1) = ink_bounds(&ink, w, h).ok_or(PreprocessError::NoItem)?;
    // Fashion-MNIST items reach full intensity; a photo's darkest part is rarely black (a navy
    // coat, a grey sneaker, soft light). Stretch so the item's strongest ink is 1.
    let top = ink_percentile(&ink, w, (x0, y0, x1, y1), STRETCH_PERCENTILE);
    let gain = 1.0 / top.max(MIN_STRETCH_REFERENCE);
    for v in &mut ink {
        *v = (above_noise(*v) * gain).min(1.0);
    }
    let (pixels, frame) = place_item(&ink, w, h, (x0, y0, x1, y1));
    let item = box_fractions((x0, y0, x1, y1), w, h);
    Ok(Preprocessed { pixels, width, height, light_background, frame, item, on_surface: false })
}

/// The surface path: the item is found by [`surface::find_item`] and keeps its shading.
fn preprocess_on_surface(rgb: &[[f32; 3]], w: usize, h: usize, width: u32, height: u32) -> Result<Preprocessed, PreprocessError> {
    let found = surface::find_item(rgb, w, h).ok_or(PreprocessError::NoItemOnSurface)?;
    // Ink is the item's contrast with the surface, as on the plain path (measured against a
    // flat mask and a mask with a floor of 0.35: the shading inside the item carries its details).
    let ink: Vec<f32> = found.mask.iter().zip(&found.contrast).map(|(&m, &c)| m * c).collect();
    let bounds = ink_bounds(&ink, w, h).ok_or(PreprocessError::NoItemOnSurface)?;
    let (pixels, frame) = place_item(&ink, w, h, bounds);
    let item = box_fractions(bounds, w, h);
    let surface_luma = found.mask.iter().zip(rgb).filter(|(m, _)| **m < 0.5).map(|(_, c)| luma(c)).sum::<f32>()
        / found.mask.iter().filter(|m| **m < 0.5).count().max(1) as f32;
    Ok(Preprocessed { pixels, width, height, light_background: surface_luma >= 0.5, frame, item, on_surface: true })
}

/// Trims `ink` (w×h, 0..1) to `bounds` (inclusive), resizes the longest edge to 28, centres it,
/// sharpens and quantises: the 28×28 input, and where its frame lies on the picture.
fn place_item(ink: &[f32], w: usize, h: usize, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> ([f32; IMAGE_PIXELS], [f32; 4]) {
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop =
        ImageBuffer::<Luma<f32>, Vec<f32>>::from_fn(cw as u32, ch as u32, |x, y| Luma([ink[(y0 + y as usize) * w + x0 + x as usize]]));
    let scale = IMAGE_SIDE as f32 / cw.max(ch) as f32;
    let nw = ((cw as f32 * scale).round() as u32).clamp(1, IMAGE_SIDE as u32);
    let nh = ((ch as f32 * scale).round() as u32).clamp(1, IMAGE_SIDE as u32);
    let resized = imageops::resize(&crop, nw, nh, FilterType::Triangle);

    let mut pixels = [0f32; IMAGE_PIXELS];
    let (ox, oy) = ((IMAGE_SIDE as u32 - nw) / 2, (IMAGE_SIDE as u32 - nh) / 2);
    for (x, y, p) in resized.enumerate_pixels() {
        pixels[((oy + y) as usize) * IMAGE_SIDE + (ox + x) as usize] = p.0[0];
    }
    sharpen(&mut pixels);
    // Fashion-MNIST is 8-bit: quantise, so the page and the trainer see identical inputs.
    for v in &mut pixels {
        *v = (*v * 255.0).round().clamp(0.0, 255.0) / 255.0;
    }
    let side = IMAGE_SIDE as f32 / scale;
    let frame = [(x0 as f32 - ox as f32 / scale) / w as f32, (y0 as f32 - oy as f32 / scale) / h as f32, side / w as f32, side / h as f32];
    (pixels, frame)
}

/// An inclusive pixel box as fractions of a w×h image: left, top, width, height.
fn box_fractions((x0, y0, x1, y1): (usize, usize, usize, usize), w: usize, h: usize) -> [f32; 4] {
    [x0 as f32 / w as f32, y0 as f32 / h as f32, (x1 - x0 + 1) as f32 / w as f32, (y1 - y0 + 1) as f32 / h as f32]
}

/// Rec. 601 brightness.
fn luma(c: &[f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

fn rgba_luma(p: &image::Rgba<f32>) -> f32 {
    luma(&[p.0[0], p.0[1], p.0[2]])
}

/// Colour in 0..1 with transparency flattened the way [`flatten_to_gray`] does.
fn flatten_to_rgb(rgba: &image::Rgba32FImage) -> Vec<[f32; 3]> {
    let fill = flatten_fill(rgba);
    rgba.pixels()
        .map(|p| {
            let a = p.0[3].clamp(0.0, 1.0);
            std::array::from_fn(|c| (a * p.0[c].clamp(0.0, 1.0) + (1.0 - a) * fill).clamp(0.0, 1.0))
        })
        .collect()
}

/// Grayscale in 0..1 with transparency flattened. The flattening colour is chosen against the
/// item: white behind a dark item, black behind a light one (a white sneaker cut out on a
/// transparent background must not vanish into a white fill).
fn flatten_to_gray(rgba: &image::Rgba32FImage) -> Vec<f32> {
    let fill = flatten_fill(rgba);
    rgba.pixels()
        .map(|p| {
            let a = p.0[3].clamp(0.0, 1.0);
            (a * rgba_luma(p).clamp(0.0, 1.0) + (1.0 - a) * fill).clamp(0.0, 1.0)
        })
        .collect()
}

/// The colour transparency is flattened onto: white behind a dark item, black behind a light one.
fn flatten_fill(rgba: &image::Rgba32FImage) -> f32 {
    let (mut opaque_sum, mut opaque_n, mut transparent_n) = (0.0f64, 0usize, 0usize);
    for p in rgba.pixels() {
        if p.0[3] >= 0.5 {
            opaque_sum += rgba_luma(p) as f64;
            opaque_n += 1;
        } else {
            transparent_n += 1;
        }
    }
    if transparent_n > 0 && opaque_n > 0 && opaque_sum / opaque_n as f64 > 0.6 { 0.0 } else { 1.0 }
}

/// Median gray level of a thin strip along the border: the background's colour.
fn border_median(gray: &[f32], w: usize, h: usize) -> f32 {
    let strip = (w.min(h) / 50).max(1);
    let mut border: Vec<f32> = Vec::with_capacity(2 * strip * (w + h));
    for y in 0..h {
        for x in 0..w {
            if x < strip || y < strip || x >= w - strip || y >= h - strip {
                border.push(gray[y * w + x]);
            }
        }
    }
    let mid = border.len() / 2;
    *border.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// Bounding box (inclusive) of the rows and columns that hold enough ink to be the item rather
/// than stray noise.
fn ink_bounds(ink: &[f32], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let mut cols = vec![0usize; w];
    let mut rows = vec![0usize; h];
    for y in 0..h {
        for x in 0..w {
            if ink[y * w + x] > INK_THRESHOLD {
                cols[x] += 1;
                rows[y] += 1;
            }
        }
    }
    let span = |counts: &[usize], min: usize| {
        let first = counts.iter().position(|&c| c >= min)?;
        let last = counts.iter().rposition(|&c| c >= min)?;
        Some((first, last))
    };
    // A row or column needs ink in at least 0.5% of its length (1 px for small images).
    let (x0, x1) = span(&cols, (h / 200).max(1))?;
    let (y0, y1) = span(&rows, (w / 200).max(1))?;
    Some((x0, y0, x1, y1))
}

/// Ink with the noise floor removed and the rest rescaled to 0..1.
fn above_noise(v: f32) -> f32 {
    ((v - NOISE_FLOOR) / (1.0 - NOISE_FLOOR)).max(0.0)
}

/// The `q` quantile of the ink values above the item threshold inside the box, after the noise
/// floor is removed.
fn ink_percentile(ink: &[f32], w: usize, (x0, y0, x1, y1): (usize, usize, usize, usize), q: f32) -> f32 {
    let mut values: Vec<f32> =
        (y0..=y1).flat_map(|y| ink[y * w + x0..=y * w + x1].iter().copied()).filter(|&v| v > INK_THRESHOLD).map(above_noise).collect();
    if values.is_empty() {
        return 1.0;
    }
    let k = ((values.len() - 1) as f32 * q) as usize;
    *values.select_nth_unstable_by(k, f32::total_cmp).1
}

/// 3×3 unsharp mask on the 28×28 canvas.
fn sharpen(pixels: &mut [f32; IMAGE_PIXELS]) {
    let src = *pixels;
    let n = IMAGE_SIDE as isize;
    for y in 0..n {
        for x in 0..n {
            let (mut sum, mut count) = (0.0, 0.0);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (xx, yy) = (x + dx, y + dy);
                    if (0..n).contains(&xx) && (0..n).contains(&yy) {
                        sum += src[(yy * n + xx) as usize];
                        count += 1.0;
                    }
                }
            }
            let i = (y * n + x) as usize;
            pixels[i] = (src[i] + SHARPEN * (src[i] - sum / count)).clamp(0.0, 1.0);
        }
    }
}
