//! Videos for the page's camera tests: Chromium's fake camera plays a Y4M file (uncompressed
//! YUV 4:2:0, with the `C420` header it requires) in a loop.

use image::{DynamicImage, RgbImage};

/// A camera's view of a Fashion-MNIST item held in front of it: the item as a photo (dark on
/// off-white, [`crate::fmnist_to_photo`]) filling half the height of a `width × height` frame,
/// centred, moved by a few pixels from frame to frame as a hand-held camera would be.
pub fn camera_scene(pixels: &[u8], width: u32, height: u32, frame: usize) -> RgbImage {
    let scale = (height / 2 / 28).max(1);
    let side = 28 * scale;
    let wobble = [(0i32, 0i32), (3, -2), (-2, 3), (2, 2), (-3, -1), (1, -3)][frame % 6];
    let x = ((width - side) / 2) as i32 + wobble.0;
    let y = ((height - side) / 2) as i32 + wobble.1;
    match crate::fmnist_to_photo(pixels, scale, (x as u32, y as u32), (width, height), [0.3, 0.35, 0.6]) {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// `frames` (all of one size, even sides) as a Y4M video at `fps` frames a second.
pub fn y4m(frames: &[RgbImage], fps: u32) -> Vec<u8> {
    let (w, h) = frames.first().map_or((0, 0), |f| f.dimensions());
    assert!(w % 2 == 0 && h % 2 == 0, "4:2:0 needs even sides, got {w}×{h}");
    let mut out = format!("YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420\n").into_bytes();
    for frame in frames {
        assert_eq!(frame.dimensions(), (w, h), "every frame has the first one's size");
        out.extend_from_slice(b"FRAME\n");
        // BT.601, studio range, as cameras deliver it.
        let yuv = |p: &image::Rgb<u8>| {
            let [r, g, b] = p.0.map(f32::from);
            (16.0 + 0.257 * r + 0.504 * g + 0.098 * b, 128.0 - 0.148 * r - 0.291 * g + 0.439 * b, 128.0 + 0.439 * r - 0.368 * g - 0.071 * b)
        };
        out.extend(frame.pixels().map(|p| yuv(p).0.round().clamp(0.0, 255.0) as u8));
        for chroma in [1, 2] {
            for y in (0..h).step_by(2) {
                for x in (0..w).step_by(2) {
                    let sum: f32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                        .iter()
                        .map(|&(dx, dy)| {
                            let c = yuv(frame.get_pixel(x + dx, y + dy));
                            if chroma == 1 { c.1 } else { c.2 }
                        })
                        .sum();
                    out.push((sum / 4.0).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_y4m_file_has_its_header_and_one_420_frame_per_picture() {
        let frames: Vec<RgbImage> = (0..3).map(|i| RgbImage::from_pixel(8, 6, image::Rgb([i * 100, 50, 200]))).collect();
        let video = y4m(&frames, 30);
        let header = b"YUV4MPEG2 W8 H6 F30:1 Ip A1:1 C420\n";
        assert!(video.starts_with(header));
        let frame_len = b"FRAME\n".len() + 8 * 6 + 2 * (4 * 3);
        assert_eq!(video.len(), header.len() + 3 * frame_len);
        // White is Y 235, gray's chroma is 128.
        let white = y4m(&[RgbImage::from_pixel(2, 2, image::Rgb([255, 255, 255]))], 1);
        assert_eq!(&white[white.len() - 6..], &[235, 235, 235, 235, 128, 128]);
    }

    #[test]
    fn the_scene_centres_the_item_on_a_light_background() {
        let item = vec![255u8; 28 * 28];
        let scene = camera_scene(&item, 640, 480, 0);
        assert_eq!(scene.dimensions(), (640, 480));
        assert!(scene.get_pixel(5, 5).0[0] > 200, "light background");
        assert!(scene.get_pixel(320, 240).0[0] < 100, "dark item in the middle");
    }
}
