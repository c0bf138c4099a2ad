//! Animated GIFs of RGB frames (`gamegen play`, rollouts): native only, so core stays free of
//! image codecs. Frames with at most 256 colours (all the real games) get an exact palette.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum GifError {
    #[error("frame {index} has {got} bytes, expected {want} ({width}x{height} RGB)")]
    BadFrame {
        index: usize,
        got: usize,
        want: usize,
        width: usize,
        height: usize,
    },
    #[error("GIF frames are at most 65535 pixels wide (got {0} after scaling)")]
    TooLarge(usize),
    #[error("no frames to write")]
    Empty,
    #[error("encoding the GIF: {0}")]
    Encode(#[from] gif::EncodingError),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Nearest-neighbour upscale of an RGB image by an integer factor (small game frames are hard
/// to see at 1:1).
pub fn upscale_rgb(rgb: &[u8], width: usize, height: usize, scale: usize) -> Vec<u8> {
    if scale <= 1 {
        return rgb.to_vec();
    }
    let mut out = Vec::with_capacity(rgb.len() * scale * scale);
    for y in 0..height {
        let row = &rgb[y * width * 3..(y + 1) * width * 3];
        let mut line = Vec::with_capacity(width * 3 * scale);
        for px in row.chunks_exact(3) {
            for _ in 0..scale {
                line.extend_from_slice(px);
            }
        }
        for _ in 0..scale {
            out.extend_from_slice(&line);
        }
    }
    out
}

/// Encode `frames` (RGB8, `width` x `height`) as a looping GIF at `fps` frames per second.
/// GIF delays are in 1/100 s, so 30 FPS alternates 3, 3 and 4 hundredths to stay exact on
/// average.
pub fn encode_gif(
    frames: &[Vec<u8>],
    width: usize,
    height: usize,
    scale: usize,
    fps: u32,
) -> Result<Vec<u8>, GifError> {
    if frames.is_empty() {
        return Err(GifError::Empty);
    }
    let scale = scale.max(1);
    let (w, h) = (width * scale, height * scale);
    if w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(GifError::TooLarge(w.max(h)));
    }
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w as u16, h as u16, &[])?;
        enc.set_repeat(gif::Repeat::Infinite)?;
        let mut shown_cs = 0u64;
        for (i, f) in frames.iter().enumerate() {
            let want = width * height * 3;
            if f.len() != want {
                return Err(GifError::BadFrame {
                    index: i,
                    got: f.len(),
                    want,
                    width,
                    height,
                });
            }
            let big = upscale_rgb(f, width, height, scale);
            let mut frame = gif::Frame::from_rgb_speed(w as u16, h as u16, &big, 10);
            // Delay so that frame i ends at round((i+1) * 100 / fps) hundredths.
            let end = ((i as u64 + 1) * 100 + fps as u64 / 2) / fps.max(1) as u64;
            frame.delay = (end - shown_cs).max(1) as u16;
            shown_cs = end;
            enc.write_frame(&frame)?;
        }
    }
    Ok(out)
}

/// [`encode_gif`] then write atomically to `path`.
pub fn write_gif(
    path: &Path,
    frames: &[Vec<u8>],
    width: usize,
    height: usize,
    scale: usize,
    fps: u32,
) -> Result<(), GifError> {
    let bytes = encode_gif(frames, width, height, scale, fps)?;
    crate::fsutil::write_atomic(path, &bytes).map_err(|source| GifError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_round_trips_exact_colours() {
        let (w, h) = (6, 4);
        let frames: Vec<Vec<u8>> = (0..5u8)
            .map(|k| {
                (0..w * h)
                    .flat_map(|i| [k * 40, i as u8 * 10, 200])
                    .collect()
            })
            .collect();
        let bytes = encode_gif(&frames, w, h, 2, 30).unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(&bytes[..]).unwrap();
        assert_eq!((dec.width(), dec.height()), (12, 8));
        let mut n = 0;
        let mut total_delay = 0u32;
        while let Some(f) = dec.read_next_frame().unwrap() {
            // Top-left pixel of the upscaled frame n is pixel 0 of frame n.
            assert_eq!(&f.buffer[..3], &[n as u8 * 40, 0, 200]);
            total_delay += f.delay as u32;
            n += 1;
        }
        assert_eq!(n, 5);
        assert_eq!(total_delay, 17); // 5 frames at 30 FPS = 16.7 hundredths
    }

    #[test]
    fn wrong_frame_size_is_an_error() {
        let e = encode_gif(&[vec![0; 5]], 2, 2, 1, 30).unwrap_err();
        assert!(e.to_string().contains("frame 0 has 5 bytes"));
        assert!(matches!(encode_gif(&[], 2, 2, 1, 30), Err(GifError::Empty)));
    }
}
