//! The user's re-framing of a photo on its card: quarter turns, a mirror and a crop box,
//! applied to the decoded (EXIF-upright) image before the usual preprocessing, so the card is
//! re-classified from the original file through exactly the same steps.
//!
//! The crop box is given in the *view* the user sees: the photo already turned and mirrored.
//! Turning or mirroring the view turns or mirrors the box with it, so a crop survives them.

use image::DynamicImage;

use crate::preprocess::{DecodeLimits, MIN_SIDE, PreprocessError, Preprocessed, decode, preprocess_image};

/// Longest side of the thumbnails a re-framed card shows instead of the uploaded file.
const THUMBNAIL_SIDE: u32 = 320;

/// How far one key press moves or resizes the crop box, as a fraction of the view.
pub const KEY_STEP: f32 = 0.05;
/// A box narrower or lower than this (a click without a drag) counts as empty.
const EMPTY_BELOW: f32 = 0.005;

/// A rectangle on the view, as fractions (0..=1) of its width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl CropBox {
    /// The whole view: where the crop editor starts.
    pub const WHOLE: CropBox = CropBox { left: 0.0, top: 0.0, width: 1.0, height: 1.0 };

    /// The box between two points of a drag, in either order, clipped to the view.
    pub fn from_corners(a: (f32, f32), b: (f32, f32)) -> Self {
        let (x0, x1) = (a.0.clamp(0.0, 1.0), b.0.clamp(0.0, 1.0));
        let (y0, y1) = (a.1.clamp(0.0, 1.0), b.1.clamp(0.0, 1.0));
        Self { left: x0.min(x1), top: y0.min(y1), width: (x1 - x0).abs(), height: (y1 - y0).abs() }
    }

    /// A click, not a drag: nothing to crop to.
    pub fn is_empty(&self) -> bool {
        self.width < EMPTY_BELOW || self.height < EMPTY_BELOW
    }

    /// Moved by `(dx, dy)`, kept inside the view.
    pub fn moved(self, dx: f32, dy: f32) -> Self {
        Self { left: (self.left + dx).clamp(0.0, 1.0 - self.width), top: (self.top + dy).clamp(0.0, 1.0 - self.height), ..self }
    }

    /// Grown (or shrunk, when negative) by `(dw, dh)` from its top-left corner, kept inside the
    /// view and never below one key step.
    pub fn resized(self, dw: f32, dh: f32) -> Self {
        Self {
            width: (self.width + dw).clamp(KEY_STEP.min(self.width), 1.0 - self.left),
            height: (self.height + dh).clamp(KEY_STEP.min(self.height), 1.0 - self.top),
            ..self
        }
    }

    /// The same region after the view turns 90° clockwise: a point (x, y) goes to (1 − y, x).
    fn turned(self) -> Self {
        Self { left: 1.0 - (self.top + self.height), top: self.left, width: self.height, height: self.width }
    }

    /// The same region after the view is mirrored left to right.
    fn mirrored(self) -> Self {
        Self { left: 1.0 - (self.left + self.width), ..self }
    }

    /// Pixel rectangle on an image of `width × height` (x, y, w, h), rounded to whole pixels.
    fn pixels(&self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let edge = |f: f32, side: u32| (f.clamp(0.0, 1.0) * side as f32).round() as u32;
        let (x0, x1) = (edge(self.left, width), edge(self.left + self.width, width));
        let (y0, y1) = (edge(self.top, height), edge(self.top + self.height, height));
        (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
    }
}

/// How the user framed a photo. The default is the photo as uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Framing {
    /// Clockwise quarter turns applied to the photo first (0..=3).
    pub quarter_turns: u8,
    /// Mirrored left to right after turning.
    pub mirrored: bool,
    /// Then cropped to this box of the turned and mirrored view.
    pub crop: Option<CropBox>,
}

impl Framing {
    pub fn is_original(&self) -> bool {
        *self == Self::default()
    }

    /// The view turned 90° clockwise. Turning a mirrored view clockwise is turning the photo
    /// anticlockwise before the mirror.
    pub fn turned(self) -> Self {
        let step = if self.mirrored { 3 } else { 1 };
        Self { quarter_turns: (self.quarter_turns + step) % 4, crop: self.crop.map(CropBox::turned), ..self }
    }

    /// The view mirrored left to right.
    pub fn mirrored(self) -> Self {
        Self { mirrored: !self.mirrored, crop: self.crop.map(CropBox::mirrored), ..self }
    }

    /// Cropped to `crop` of the turned and mirrored view; an empty box is refused and changes
    /// nothing.
    pub fn cropped(self, crop: CropBox) -> Result<Self, PreprocessError> {
        if crop.is_empty() {
            return Err(PreprocessError::EmptyCrop);
        }
        Ok(Self { crop: (crop != CropBox::WHOLE).then_some(crop), ..self })
    }

    /// The same turn and mirror without the crop (what the crop editor shows).
    pub fn uncropped(self) -> Self {
        Self { crop: None, ..self }
    }

    /// The view of `image` this framing describes.
    pub fn apply(&self, image: &DynamicImage) -> Result<DynamicImage, PreprocessError> {
        let turned = match self.quarter_turns % 4 {
            1 => image.rotate90(),
            2 => image.rotate180(),
            3 => image.rotate270(),
            _ => image.clone(),
        };
        let view = if self.mirrored { turned.fliph() } else { turned };
        let Some(crop) = self.crop else { return Ok(view) };
        if crop.is_empty() {
            return Err(PreprocessError::EmptyCrop);
        }
        let (x, y, w, h) = crop.pixels(view.width(), view.height());
        if w < MIN_SIDE || h < MIN_SIDE {
            return Err(PreprocessError::CropTooSmall { width: w, height: h });
        }
        Ok(view.crop_imm(x, y, w, h))
    }
}

/// A small RGBA picture of a view, for a canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    pub rgba: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Thumbnail {
    fn of(image: &DynamicImage) -> Self {
        // `thumbnail` also enlarges; a small photo is shown as it is.
        let small = if image.width().max(image.height()) > THUMBNAIL_SIDE {
            image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).to_rgba8()
        } else {
            image.to_rgba8()
        };
        Self { width: small.width(), height: small.height(), rgba: small.into_raw() }
    }
}

/// A photo decoded, re-framed and preprocessed.
#[derive(Debug, Clone)]
pub struct FramedPhoto {
    /// The model input made from the view (its `frame` is a fraction of the view).
    pub input: Preprocessed,
    /// When the framing is not the original: the view, and the view without its crop (what the
    /// crop editor shows).
    pub thumbnails: Option<(Thumbnail, Thumbnail)>,
}

/// Decodes a file, applies `framing` and preprocesses the view: the one path from an uploaded
/// file to a model input, re-framed or not.
pub fn preprocess_framed(bytes: &[u8], limits: DecodeLimits, framing: &Framing) -> Result<FramedPhoto, PreprocessError> {
    preprocess_framed_image(&decode(bytes, limits)?, framing)
}

/// [`preprocess_framed`] for an image decoded elsewhere (the page hands it the pixels of a
/// format only the browser can decode, such as AVIF), EXIF orientation already applied.
pub fn preprocess_framed_image(image: &DynamicImage, framing: &Framing) -> Result<FramedPhoto, PreprocessError> {
    let view = framing.apply(image)?;
    let input = preprocess_image(&view)?;
    let thumbnails = if framing.is_original() {
        None
    } else {
        let shown = Thumbnail::of(&view);
        let whole = if framing.crop.is_some() { Thumbnail::of(&framing.uncropped().apply(image)?) } else { shown.clone() };
        Some((shown, whole))
    };
    Ok(FramedPhoto { input, thumbnails })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    /// A 4×2 image whose pixels are numbered, so every transform can be checked exactly.
    fn numbered(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(width, height, |x, y| Luma([(y * width + x) as u8])))
    }

    fn values(image: &DynamicImage) -> (u32, u32, Vec<u8>) {
        (image.width(), image.height(), image.to_luma8().into_raw())
    }

    #[test]
    fn four_turns_or_two_mirrors_give_the_photo_back() {
        let image = numbered(40, 20);
        let mut framing = Framing::default();
        for _ in 0..4 {
            framing = framing.turned();
        }
        assert!(framing.is_original());
        assert!(Framing::default().mirrored().mirrored().is_original());
        assert_eq!(values(&framing.apply(&image).unwrap()), values(&image));
    }

    #[test]
    fn a_turn_after_a_mirror_turns_what_the_user_sees() {
        let image = numbered(40, 20);
        // What the user sees after "mirror" then "turn": the mirrored view, turned clockwise.
        let expected = image.fliph().rotate90();
        let framing = Framing::default().mirrored().turned();
        assert_eq!(values(&framing.apply(&image).unwrap()), values(&expected));
    }

    #[test]
    fn the_crop_box_follows_turns_and_mirrors() {
        let image = numbered(40, 20);
        // The right half of the photo, then turn and mirror the view: still the same pixels.
        let right = Framing::default().cropped(CropBox { left: 0.5, top: 0.0, width: 0.5, height: 1.0 }).unwrap();
        let crop_only = right.apply(&image).unwrap();
        for framing in [right.turned(), right.mirrored(), right.turned().mirrored().turned()] {
            let same_region = framing.apply(&image).unwrap();
            // Undo the view's turns and mirror on the result: the pixels of the right half again.
            let mut undone = same_region;
            if framing.mirrored {
                undone = undone.fliph();
            }
            for _ in 0..(4 - framing.quarter_turns) % 4 {
                undone = undone.rotate90();
            }
            assert_eq!(values(&undone), values(&crop_only), "{framing:?}");
        }
        assert_eq!(values(&crop_only), values(&image.crop_imm(20, 0, 20, 20)));
    }

    #[test]
    fn an_empty_or_tiny_crop_is_refused_with_a_clear_error() {
        let image = numbered(40, 20);
        let click = CropBox::from_corners((0.3, 0.3), (0.3, 0.3));
        assert_eq!(Framing::default().cropped(click), Err(PreprocessError::EmptyCrop));
        assert!(PreprocessError::EmptyCrop.to_string().contains("drag"));
        let tiny = Framing::default().cropped(CropBox { left: 0.0, top: 0.0, width: 0.1, height: 0.1 }).unwrap();
        assert!(matches!(tiny.apply(&image), Err(PreprocessError::CropTooSmall { width: 4, height: 2 })));
    }

    #[test]
    fn a_turned_photo_turned_back_gives_the_upright_photo_s_input() {
        use image::{ImageFormat, RgbImage};
        // A dark T shape on a light background: not symmetric under a quarter turn.
        let upright = DynamicImage::ImageRgb8(RgbImage::from_fn(60, 40, |x, y| {
            let ink = (10..50).contains(&x) && (5..12).contains(&y) || (25..35).contains(&x) && (5..36).contains(&y);
            image::Rgb(if ink { [40, 30, 30] } else { [235, 235, 230] })
        }));
        let png = |image: &DynamicImage| {
            let mut bytes = Vec::new();
            image.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png).unwrap();
            bytes
        };
        let limits = DecodeLimits::default();
        let reference = preprocess_framed(&png(&upright), limits, &Framing::default()).unwrap();
        assert!(reference.thumbnails.is_none());
        // The file turned anticlockwise; one clockwise turn of the view undoes it.
        let framed = preprocess_framed(&png(&upright.rotate270()), limits, &Framing::default().turned()).unwrap();
        assert_eq!(framed.input.pixels, reference.input.pixels);
        let (view, uncropped) = framed.thumbnails.unwrap();
        assert_eq!((view.width, view.height, view.rgba.len()), (60, 40, 60 * 40 * 4));
        assert_eq!(view, uncropped);
        // Not undone, the input differs: the turn reached the network.
        let unturned = preprocess_framed(&png(&upright.rotate270()), limits, &Framing::default()).unwrap();
        assert_ne!(unturned.input.pixels, reference.input.pixels);
    }

    #[test]
    fn keys_move_and_resize_the_box_inside_the_view() {
        let mut crop = CropBox::WHOLE;
        for _ in 0..10 {
            crop = crop.resized(-KEY_STEP, 0.0);
        }
        for _ in 0..30 {
            crop = crop.moved(KEY_STEP, 0.0);
        }
        assert!((crop.left - 0.5).abs() < 1e-5 && (crop.width - 0.5).abs() < 1e-5, "{crop:?}");
        assert_eq!(crop.pixels(40, 20), (20, 0, 20, 20));
        // Never shrunk to nothing, never grown out of the view.
        let small = (0..100).fold(crop, |c, _| c.resized(-KEY_STEP, -KEY_STEP));
        assert!(!small.is_empty());
        let big = (0..100).fold(small, |c, _| c.resized(KEY_STEP, KEY_STEP));
        assert!(big.left + big.width <= 1.0 + 1e-6 && big.top + big.height <= 1.0 + 1e-6);
        // A drag in any direction gives the same box.
        assert_eq!(CropBox::from_corners((0.8, 0.9), (0.2, -0.5)), CropBox::from_corners((0.2, 0.0), (0.8, 0.9)));
    }
}
