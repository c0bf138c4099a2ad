//! MaaG's spatial module: an explicit external map of everything seen, the local map around the
//! player as extra DiT tokens, and linking each generated frame back into the map.
//!
//! The map is plain RGB pixels in world coordinates (a 1-D strip is simply a map whose vertical
//! movement range is 0), so a designer can paint a preset into it and the player's position is
//! always known. Only the "world" rows of a frame are stored (the score bar is not part of the
//! world). Linking slides the new frame over the stored map within the movement range and keeps
//! the offset with the best PSNR over the overlap; Pac-Man matches on maze-colour pixels only.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{adaptive_avg_pool2d, max_pool2d};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::world::model::blocks::conv3;
use crate::world::{ConfigError, check_range};

/// The map CNN: 5 convolutions and 4 max-pools (MaaG, ~0.1M parameters at paper size), then an
/// adaptive average pool to a fixed token grid so any crop size gives the same token count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapEncoderConfig {
    /// Size of the local map crop in pixels (wider than the view).
    pub crop_height: usize,
    pub crop_width: usize,
    pub channels: [usize; 5],
    /// Token grid `[rows, cols]`; tokens = rows * cols (MaaG: 40 Traveler, 48 Pac-Man).
    pub token_grid: [usize; 2],
}

impl MapEncoderConfig {
    pub fn tiny(crop_height: usize, crop_width: usize, token_grid: [usize; 2]) -> Self {
        Self {
            crop_height,
            crop_width,
            channels: [8, 16, 16, 32, 32],
            token_grid,
        }
    }

    pub fn paper(crop_height: usize, crop_width: usize, token_grid: [usize; 2]) -> Self {
        Self {
            crop_height,
            crop_width,
            channels: [16, 32, 32, 64, 64],
            token_grid,
        }
    }

    pub fn tokens(&self) -> usize {
        self.token_grid[0] * self.token_grid[1]
    }

    pub fn token_dim(&self) -> usize {
        self.channels[4]
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("map.crop_height", self.crop_height, 4096)?;
        check_range("map.crop_width", self.crop_width, 4096)?;
        for c in self.channels {
            check_range("map.channels", c, 1024)?;
        }
        check_range("map.token_grid rows", self.token_grid[0], 64)?;
        check_range("map.token_grid cols", self.token_grid[1], 64)?;
        if self.crop_height < 16 || self.crop_width < 16 {
            return Err(ConfigError(
                "map crop must be at least 16x16 (four 2x poolings)".into(),
            ));
        }
        Ok(())
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<MapEncoder<B>, ConfigError> {
        self.validate()?;
        let c = self.channels;
        Ok(MapEncoder {
            convs: vec![
                conv3(3, c[0], 1, device),
                conv3(c[0], c[1], 1, device),
                conv3(c[1], c[2], 1, device),
                conv3(c[2], c[3], 1, device),
                conv3(c[3], c[4], 1, device),
            ],
            token_grid: self.token_grid,
        })
    }
}

#[derive(Module, Debug)]
pub struct MapEncoder<B: Backend> {
    pub(crate) convs: Vec<Conv2d<B>>,
    pub(crate) token_grid: [usize; 2],
}

impl<B: Backend> MapEncoder<B> {
    /// Local maps `[B, 3, h, w]` in `[0, 1]` -> tokens `[B, rows*cols, channels[4]]`.
    pub fn forward(&self, crops: Tensor<B, 4>) -> Tensor<B, 3> {
        let mut x = crops;
        for (i, conv) in self.convs.iter().enumerate() {
            x = silu(conv.forward(x));
            if i < 4 {
                x = max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], true);
            }
        }
        let x = adaptive_avg_pool2d(x, self.token_grid);
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).swap_dims(1, 2)
    }
}

/// Result of linking a frame into the map.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkResult {
    /// World position (top-left of the frame's world rows) chosen for the frame.
    pub position: (i64, i64),
    /// Offset from the previous position.
    pub offset: (i64, i64),
    /// PSNR of the best match over the overlap (`None` when nothing overlapped: empty map).
    pub psnr: Option<f64>,
}

/// Which pixels count when matching (MaaG matches Pac-Man on blue maze pixels only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchMask {
    /// All channels of all pixels.
    All,
    /// A binary feature: is the pixel within `tolerance` (max abs channel difference) of
    /// `color`? Matching compares these features, so only the maze shape matters.
    Color { color: [u8; 3], tolerance: u8 },
}

impl MatchMask {
    fn feature(&self, p: [u8; 3]) -> f64 {
        match *self {
            MatchMask::All => 0.0,
            MatchMask::Color { color, tolerance } => {
                let close = (0..3).all(|i| p[i].abs_diff(color[i]) <= tolerance);
                if close { 1.0 } else { 0.0 }
            }
        }
    }
}

/// The external map plus the current view position.
#[derive(Clone, Debug, PartialEq)]
pub struct SpatialMap {
    frame_width: usize,
    frame_height: usize,
    /// Frame rows `[top, bottom)` that show the world (the rest is e.g. the score bar).
    world_rows: (usize, usize),
    /// Canvas origin (world coordinates of canvas pixel (0, 0)) and size.
    origin: (i64, i64),
    size: (usize, usize),
    rgb: Vec<u8>,
    seen: Vec<bool>,
    /// World position of the top-left of the current view's world rows.
    pub position: (i64, i64),
    /// Minimum overlap, as a fraction of the frame's world pixels, for a match to count.
    pub min_overlap: f64,
}

impl SpatialMap {
    pub fn new(frame_width: usize, frame_height: usize, world_rows: (usize, usize)) -> Self {
        assert!(world_rows.0 < world_rows.1 && world_rows.1 <= frame_height);
        Self {
            frame_width,
            frame_height,
            world_rows,
            origin: (0, 0),
            size: (0, 0),
            rgb: Vec::new(),
            seen: Vec::new(),
            position: (0, 0),
            min_overlap: 0.25,
        }
    }

    fn region_height(&self) -> usize {
        self.world_rows.1 - self.world_rows.0
    }

    /// Colour of world pixel `(x, y)` if it has been seen.
    pub fn pixel(&self, x: i64, y: i64) -> Option<[u8; 3]> {
        let cx = x - self.origin.0;
        let cy = y - self.origin.1;
        if cx < 0 || cy < 0 || cx >= self.size.0 as i64 || cy >= self.size.1 as i64 {
            return None;
        }
        let i = cy as usize * self.size.0 + cx as usize;
        self.seen[i].then(|| [self.rgb[3 * i], self.rgb[3 * i + 1], self.rgb[3 * i + 2]])
    }

    /// Grow the canvas (with slack, so a walk does not reallocate every frame) to hold the
    /// world rectangle `(x, y, w, h)`.
    fn ensure(&mut self, x: i64, y: i64, w: usize, h: usize) {
        let (ox, oy) = self.origin;
        let (sw, sh) = (self.size.0 as i64, self.size.1 as i64);
        let inside = self.size.0 > 0
            && x >= ox
            && y >= oy
            && x + w as i64 <= ox + sw
            && y + h as i64 <= oy + sh;
        if inside {
            return;
        }
        let slack = 64;
        let (nx0, ny0, nx1, ny1) = if self.size.0 == 0 {
            (
                x - slack,
                y - slack,
                x + w as i64 + slack,
                y + h as i64 + slack,
            )
        } else {
            (
                ox.min(x - slack),
                oy.min(y - slack),
                (ox + sw).max(x + w as i64 + slack),
                (oy + sh).max(y + h as i64 + slack),
            )
        };
        let nw = (nx1 - nx0) as usize;
        let nh = (ny1 - ny0) as usize;
        let mut rgb = vec![0u8; nw * nh * 3];
        let mut seen = vec![false; nw * nh];
        for row in 0..self.size.1 {
            let src = row * self.size.0;
            let dst = (row as i64 + oy - ny0) as usize * nw + (ox - nx0) as usize;
            seen[dst..dst + self.size.0].copy_from_slice(&self.seen[src..src + self.size.0]);
            rgb[3 * dst..3 * (dst + self.size.0)]
                .copy_from_slice(&self.rgb[3 * src..3 * (src + self.size.0)]);
        }
        self.origin = (nx0, ny0);
        self.size = (nw, nh);
        self.rgb = rgb;
        self.seen = seen;
    }

    /// Paint a `w x h` RGB block at world `(x, y)` (designer presets, and frame writes).
    pub fn paint(&mut self, x: i64, y: i64, w: usize, h: usize, rgb: &[u8]) {
        assert_eq!(rgb.len(), w * h * 3, "paint: block size mismatch");
        self.ensure(x, y, w, h);
        for row in 0..h {
            let cy = (y - self.origin.1) as usize + row;
            let cx = (x - self.origin.0) as usize;
            let dst = cy * self.size.0 + cx;
            self.rgb[3 * dst..3 * (dst + w)].copy_from_slice(&rgb[3 * row * w..3 * (row + 1) * w]);
            self.seen[dst..dst + w].fill(true);
        }
    }

    /// The world rows of an RGB frame (`frame_width * frame_height * 3` bytes).
    fn world_part<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        assert_eq!(frame.len(), self.frame_width * self.frame_height * 3);
        let row = self.frame_width * 3;
        &frame[self.world_rows.0 * row..self.world_rows.1 * row]
    }

    /// Store a frame's world rows at world `position` and make it the current view.
    pub fn write_frame(&mut self, frame: &[u8], position: (i64, i64)) {
        let part = self.world_part(frame).to_vec();
        self.paint(
            position.0,
            position.1,
            self.frame_width,
            self.region_height(),
            &part,
        );
        self.position = position;
    }

    /// RGB crop `w x h` centred on the current view's world centre; unobserved pixels black.
    pub fn local_crop(&self, w: usize, h: usize) -> Vec<u8> {
        let cx = self.position.0 + self.frame_width as i64 / 2;
        let cy = self.position.1 + self.region_height() as i64 / 2;
        self.crop(cx - w as i64 / 2, cy - h as i64 / 2, w, h)
    }

    /// RGB crop of the world rectangle `(x, y, w, h)`; unobserved pixels black.
    pub fn crop(&self, x: i64, y: i64, w: usize, h: usize) -> Vec<u8> {
        let mut out = vec![0u8; w * h * 3];
        for row in 0..h {
            for col in 0..w {
                if let Some(p) = self.pixel(x + col as i64, y + row as i64) {
                    let i = 3 * (row * w + col);
                    out[i..i + 3].copy_from_slice(&p);
                }
            }
        }
        out
    }

    /// Slide the frame over the map within `range` (max |dx|, |dy|) around the current
    /// position and return the best-PSNR placement (ties go to the smaller move, so a
    /// featureless scene stays put).
    pub fn link(&self, frame: &[u8], range: (i64, i64), mask: MatchMask) -> LinkResult {
        let part = self.world_part(frame);
        if range.0 < 0 || range.1 < 0 {
            // No offset to try.
            return LinkResult {
                position: self.position,
                offset: (0, 0),
                psnr: None,
            };
        }
        let (w, h) = (self.frame_width, self.region_height());
        let min_count = ((w * h) as f64 * self.min_overlap).max(1.0) as usize;
        let peak = match mask {
            MatchMask::All => 255.0f64,
            MatchMask::Color { .. } => 1.0,
        };
        let (sw, sh) = (self.size.0 as i64, self.size.1 as i64);
        // With a colour mask only the binary feature of each pixel matters: compute it once
        // per frame pixel and once per map pixel of the searched window (`UNSEEN` where the map
        // has nothing), instead of once per pixel and offset. The sums are the same numbers in
        // the same order, so the result is the same to the bit.
        let rgb_at = |i: usize| [self.rgb[3 * i], self.rgb[3 * i + 1], self.rgb[3 * i + 2]];
        let (win_x, win_y) = (
            self.position.0 - range.0 - self.origin.0,
            self.position.1 - range.1 - self.origin.1,
        );
        let (win_w, win_h) = (w + 2 * range.0 as usize, h + 2 * range.1 as usize);
        let (frame_feat, map_feat) = match mask {
            MatchMask::All => (Vec::new(), Vec::new()),
            MatchMask::Color { .. } => {
                let ff: Vec<u8> = part
                    .chunks_exact(3)
                    .map(|p| mask.feature([p[0], p[1], p[2]]) as u8)
                    .collect();
                let mut mf = vec![UNSEEN; win_w * win_h];
                for r in 0..win_h {
                    let wy = win_y + r as i64;
                    if wy < 0 || wy >= sh {
                        continue;
                    }
                    for c in 0..win_w {
                        let wx = win_x + c as i64;
                        if wx < 0 || wx >= sw {
                            continue;
                        }
                        let i = wy as usize * self.size.0 + wx as usize;
                        if self.seen[i] {
                            mf[r * win_w + c] = mask.feature(rgb_at(i)) as u8;
                        }
                    }
                }
                (ff, mf)
            }
        };
        let mut best: Option<(f64, i64, (i64, i64))> = None;
        for dy in -range.1..=range.1 {
            for dx in -range.0..=range.0 {
                let (px, py) = (self.position.0 + dx, self.position.1 + dy);
                // Frame columns whose map column lies on the canvas.
                let col0 = (self.origin.0 - px).clamp(0, w as i64) as usize;
                let col1 = (self.origin.0 + sw - px).clamp(0, w as i64) as usize;
                let mut se = 0.0f64;
                let mut count = 0usize;
                for row in 0..h {
                    let wy = py + row as i64 - self.origin.1;
                    if wy < 0 || wy >= sh || col0 >= col1 {
                        continue;
                    }
                    match mask {
                        MatchMask::All => {
                            let base = wy as usize * self.size.0;
                            let wx0 = (px + col0 as i64 - self.origin.0) as usize;
                            for (k, col) in (col0..col1).enumerate() {
                                let i = base + wx0 + k;
                                if !self.seen[i] {
                                    continue;
                                }
                                let f = 3 * (row * w + col);
                                let sq: u32 = (0..3)
                                    .map(|c| {
                                        let d = part[f + c] as i32 - self.rgb[3 * i + c] as i32;
                                        (d * d) as u32
                                    })
                                    .sum();
                                // Each term an integer, so the f64 sum is the one the
                                // per-channel f64 sum gave.
                                se += sq as f64 / 3.0;
                                count += 1;
                            }
                        }
                        MatchMask::Color { .. } => {
                            let r = (row as i64 + dy + range.1) as usize;
                            let c0 = (col0 as i64 + dx + range.0) as usize;
                            let map_row = &map_feat[r * win_w + c0..r * win_w + c0 + (col1 - col0)];
                            let frame_row = &frame_feat[row * w + col0..row * w + col1];
                            let (seen, differ) = match_counts(map_row, frame_row);
                            count += seen as usize;
                            // Sums of 0.0 and 1.0 are exact: the same as adding them one by one.
                            se += differ as f64;
                        }
                    }
                }
                if count < min_count {
                    continue;
                }
                let mse = se / count as f64;
                let psnr = if mse <= 0.0 {
                    f64::INFINITY
                } else {
                    10.0 * (peak * peak / mse).log10()
                };
                let dist = dx.abs() + dy.abs();
                let better = match best {
                    None => true,
                    Some((bp, bd, _)) => {
                        let same = psnr == bp || (psnr - bp).abs() <= 1e-9;
                        (psnr > bp && !same) || (same && dist < bd)
                    }
                };
                if better {
                    best = Some((psnr, dist, (dx, dy)));
                }
            }
        }
        match best {
            Some((psnr, _, off)) => LinkResult {
                position: (self.position.0 + off.0, self.position.1 + off.1),
                offset: off,
                psnr: Some(psnr),
            },
            None => LinkResult {
                position: self.position,
                offset: (0, 0),
                psnr: None,
            },
        }
    }

    /// Link a new frame and write it into the map at the linked position.
    pub fn observe(&mut self, frame: &[u8], range: (i64, i64), mask: MatchMask) -> LinkResult {
        let r = self.link(frame, range, mask);
        self.write_frame(frame, r.position);
        r
    }

    /// Seen/total pixel counts (for reports).
    pub fn coverage(&self) -> (usize, usize) {
        (self.seen.iter().filter(|s| **s).count(), self.seen.len())
    }
}

/// The colour-mask feature of a map pixel nothing has been seen at (seen ones are 0 or 1).
const UNSEEN: u8 = 2;

/// Over one row of the colour-mask match: how many map pixels are seen (features 0 or 1;
/// [`UNSEEN`] is 2) and how many of those differ from the frame's (0 or 1). Branch-free, so it
/// runs 16-32 pixels per instruction: `m ^ f` is 1 exactly when a seen map pixel differs (an
/// unseen one gives 2 or 3).
#[inline]
fn match_counts(map_row: &[u8], frame_row: &[u8]) -> (u32, u32) {
    let mut seen = 0u32;
    let mut differ = 0u32;
    for (&m, &f) in map_row.iter().zip(frame_row) {
        seen += (m < UNSEEN) as u32;
        differ += ((m ^ f) == 1) as u32;
    }
    (seen, differ)
}

/// The local maps a play session feeds the DiT for frames `start..start + len` of a recorded
/// episode (`frames`: RGB8 frames back to back; `positions[t]`: where frame `t` sits in the
/// world), made the way [`WorldSession`](super::WorldSession) makes them, so that training sees
/// what play will show:
/// - a session's reset writes its first frame before the absorbing pass, so the clip's first
///   frame sees the map of frames `0..=start`;
/// - frame `start + k` (`k >= 1`) is generated from the map as it stood after frame
///   `start + k - 1` was linked in, centred on that frame.
///
/// Recorded positions stand in for linking, which recovers them on real frames (tested below).
/// `map` may already hold a designer's preset; `crop` is `(width, height)`.
pub fn replay_local_maps(
    mut map: SpatialMap,
    frames: &[u8],
    positions: &[(i64, i64)],
    start: usize,
    len: usize,
    crop: (usize, usize),
) -> Vec<Vec<u8>> {
    let fl = map.frame_width * map.frame_height * 3;
    assert!(
        len >= 1 && start + len <= positions.len() && frames.len() >= positions.len() * fl,
        "replay_local_maps: clip outside the episode"
    );
    let frame = |t: usize| &frames[t * fl..(t + 1) * fl];
    for (t, &position) in positions.iter().enumerate().take(start + 1) {
        map.write_frame(frame(t), position);
    }
    let mut out = Vec::with_capacity(len);
    out.push(map.local_crop(crop.0, crop.1));
    for k in 1..len {
        if k >= 2 {
            let t = start + k - 1;
            map.write_frame(frame(t), positions[t]);
        }
        out.push(map.local_crop(crop.0, crop.1));
    }
    out
}

/// Stack RGB8 crops (each `h * w * 3`, interleaved) into a `[B, 3, h, w]` tensor in `[0, 1]`.
pub fn crops_to_tensor<B: Backend>(
    crops: &[Vec<u8>],
    h: usize,
    w: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let mut data = Vec::with_capacity(crops.len() * 3 * h * w);
    for crop in crops {
        assert_eq!(crop.len(), h * w * 3, "crop size mismatch");
        for c in 0..3 {
            data.extend((0..h * w).map(|i| crop[3 * i + c] as f32 / 255.0));
        }
    }
    Tensor::from_data(TensorData::new(data, [crops.len(), 3, h, w]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use burn::backend::NdArray;

    /// A world of random coloured 8x8 blocks, `w x h`.
    fn world(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng::new(seed);
        let blocks: Vec<[u8; 3]> = (0..(w / 8 + 1) * (h / 8 + 1))
            .map(|_| {
                [
                    rng.below(256) as u8,
                    rng.below(256) as u8,
                    rng.below(256) as u8,
                ]
            })
            .collect();
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                out.extend_from_slice(&blocks[(y / 8) * (w / 8 + 1) + x / 8]);
            }
        }
        out
    }

    /// The frame seen at world `(x, y)`: a score bar of `bar` rows then the world rows.
    fn frame_at(
        world: &[u8],
        ww: usize,
        x: usize,
        y: usize,
        fw: usize,
        fh: usize,
        bar: usize,
    ) -> Vec<u8> {
        let mut f = vec![200u8; fw * fh * 3];
        for row in bar..fh {
            for col in 0..fw {
                let s = 3 * ((y + row - bar) * ww + x + col);
                let d = 3 * (row * fw + col);
                f[d..d + 3].copy_from_slice(&world[s..s + 3]);
            }
        }
        f
    }

    #[test]
    fn linking_recovers_a_known_offset_1d_and_2d() {
        let (ww, wh) = (400, 200);
        let w = world(ww, wh, 7);
        // 1-D strip, Traveler-like: 96x96 frames with a 20-row bar.
        let mut map = SpatialMap::new(96, 96, (20, 96));
        map.write_frame(&frame_at(&w, ww, 100, 50, 96, 96, 20), (100, 50));
        for dx in [-9i64, -3, 0, 4, 7] {
            let f = frame_at(&w, ww, (100 + dx) as usize, 50, 96, 96, 20);
            let r = map.link(&f, (10, 0), MatchMask::All);
            assert_eq!(r.position, (100 + dx, 50), "dx={dx}");
            assert_eq!(r.psnr, Some(f64::INFINITY));
        }
        // 2-D with a colour mask: only "maze" pixels (one colour) matter.
        let maze = [33u8, 33, 222];
        let mut w2 = w.clone();
        let mut rng = Rng::new(9);
        for px in w2.chunks_mut(3) {
            if rng.chance(0.3) {
                px.copy_from_slice(&maze);
            }
        }
        let mut map = SpatialMap::new(64, 64, (0, 64));
        map.write_frame(&frame_at(&w2, ww, 150, 60, 64, 64, 0), (150, 60));
        let f = frame_at(&w2, ww, 156, 53, 64, 64, 0);
        let r = map.observe(
            &f,
            (10, 10),
            MatchMask::Color {
                color: maze,
                tolerance: 10,
            },
        );
        assert_eq!(r.offset, (6, -7));
        assert_eq!(map.position, (156, 53));
        // The newly revealed strip is now in the map with the right colours.
        assert_eq!(
            map.pixel(156 + 63, 53),
            Some(maze_or(&w2, ww, 156 + 63, 53))
        );
    }

    /// `SpatialMap::link` as it was before the per-pixel features were computed once.
    fn link_reference(
        map: &SpatialMap,
        frame: &[u8],
        range: (i64, i64),
        mask: MatchMask,
    ) -> LinkResult {
        let part = map.world_part(frame);
        let (w, h) = (map.frame_width, map.region_height());
        let min_count = ((w * h) as f64 * map.min_overlap).max(1.0) as usize;
        let peak = match mask {
            MatchMask::All => 255.0f64,
            MatchMask::Color { .. } => 1.0,
        };
        let mut best: Option<(f64, i64, (i64, i64))> = None;
        for dy in -range.1..=range.1 {
            for dx in -range.0..=range.0 {
                let (px, py) = (map.position.0 + dx, map.position.1 + dy);
                let mut se = 0.0f64;
                let mut count = 0usize;
                for row in 0..h {
                    let wy = py + row as i64 - map.origin.1;
                    if wy < 0 || wy >= map.size.1 as i64 {
                        continue;
                    }
                    let base = wy as usize * map.size.0;
                    for col in 0..w {
                        let wx = px + col as i64 - map.origin.0;
                        if wx < 0 || wx >= map.size.0 as i64 {
                            continue;
                        }
                        let i = base + wx as usize;
                        if !map.seen[i] {
                            continue;
                        }
                        let f = 3 * (row * w + col);
                        let a = [part[f], part[f + 1], part[f + 2]];
                        let b = [map.rgb[3 * i], map.rgb[3 * i + 1], map.rgb[3 * i + 2]];
                        se += match mask {
                            MatchMask::All => {
                                (0..3)
                                    .map(|k| {
                                        let d = a[k] as f64 - b[k] as f64;
                                        d * d
                                    })
                                    .sum::<f64>()
                                    / 3.0
                            }
                            MatchMask::Color { .. } => (mask.feature(a) - mask.feature(b)).abs(),
                        };
                        count += 1;
                    }
                }
                if count < min_count {
                    continue;
                }
                let mse = se / count as f64;
                let psnr = if mse <= 0.0 {
                    f64::INFINITY
                } else {
                    10.0 * (peak * peak / mse).log10()
                };
                let dist = dx.abs() + dy.abs();
                let better = match best {
                    None => true,
                    Some((bp, bd, _)) => {
                        let same = psnr == bp || (psnr - bp).abs() <= 1e-9;
                        (psnr > bp && !same) || (same && dist < bd)
                    }
                };
                if better {
                    best = Some((psnr, dist, (dx, dy)));
                }
            }
        }
        match best {
            Some((psnr, _, off)) => LinkResult {
                position: (map.position.0 + off.0, map.position.1 + off.1),
                offset: off,
                psnr: Some(psnr),
            },
            None => LinkResult {
                position: map.position,
                offset: (0, 0),
                psnr: None,
            },
        }
    }

    #[test]
    fn linking_gives_the_reference_result() {
        let (ww, wh) = (400, 200);
        let mut w = world(ww, wh, 11);
        let maze = [33u8, 33, 222];
        let mut rng = Rng::new(4);
        for px in w.chunks_mut(3) {
            if rng.chance(0.3) {
                px.copy_from_slice(&maze);
            } else if rng.chance(0.1) {
                // Near the maze colour: inside some tolerances, outside others.
                px.copy_from_slice(&[40, 30, 210]);
            }
        }
        let masks = [
            MatchMask::All,
            MatchMask::Color {
                color: maze,
                tolerance: 10,
            },
            MatchMask::Color {
                color: maze,
                tolerance: 0,
            },
        ];
        for mask in masks {
            let mut map = SpatialMap::new(64, 48, (8, 48));
            // A patchy map: a few frames, so some searched pixels are unseen or off the canvas.
            for (x, y) in [(150usize, 60usize), (190, 70), (120, 90)] {
                map.write_frame(&frame_at(&w, ww, x, y, 64, 48, 8), (x as i64, y as i64));
            }
            for (x, y, noise) in [(155usize, 55usize, 0u8), (185, 72, 20), (110, 95, 60)] {
                let mut f = frame_at(&w, ww, x, y, 64, 48, 8);
                for v in f.iter_mut() {
                    *v = v.saturating_add((rng.below(noise as u64 + 1)) as u8);
                }
                for range in [(10, 10), (6, 6), (10, 0), (0, 0), (-1, 3)] {
                    let want = link_reference(&map, &f, range, mask);
                    let got = map.link(&f, range, mask);
                    assert_eq!(got, want, "{mask:?} {range:?} at {x},{y}");
                    if let (Some(a), Some(b)) = (got.psnr, want.psnr) {
                        assert_eq!(a.to_bits(), b.to_bits());
                    }
                }
                map.observe(&f, (10, 10), mask);
            }
        }
    }

    fn maze_or(w: &[u8], ww: usize, x: i64, y: i64) -> [u8; 3] {
        let i = 3 * (y as usize * ww + x as usize);
        [w[i], w[i + 1], w[i + 2]]
    }

    #[test]
    fn empty_map_keeps_position_and_crops_are_black_outside() {
        let map = SpatialMap::new(8, 8, (0, 8));
        let r = map.link(&[5u8; 8 * 8 * 3], (3, 3), MatchMask::All);
        assert_eq!(r.offset, (0, 0));
        assert_eq!(r.psnr, None);
        let mut map = SpatialMap::new(8, 8, (0, 8));
        map.paint(0, 0, 8, 8, &[255u8; 8 * 8 * 3]);
        let crop = map.local_crop(16, 8);
        // Columns -4..12: the middle 8 are white, the sides black.
        assert_eq!(&crop[0..3], &[0, 0, 0]);
        assert_eq!(&crop[3 * 4..3 * 5], &[255, 255, 255]);
        assert_eq!(&crop[3 * 15..3 * 16], &[0, 0, 0]);
    }

    /// Training's replayed local maps equal the ones a session builds by linking each real
    /// frame into its map (Traveler's strip and Pac-Man's maze, MaaG's link settings).
    #[test]
    fn replayed_local_maps_match_a_linking_session_on_real_games() {
        use crate::games::{GameKind, new_game};
        use crate::world::model::SpatialConfig;
        for (kind, script) in [
            (
                GameKind::Traveler,
                [2u8, 2, 2, 0, 1, 1, 1, 1, 2, 0].repeat(4),
            ),
            (GameKind::Pacman, [4u8, 4, 4, 3, 3, 3, 1, 1, 2, 2].repeat(4)),
        ] {
            let cfg = SpatialConfig::for_game(kind, false).unwrap();
            let crop = (cfg.encoder.crop_width, cfg.encoder.crop_height);
            let mut game = new_game(kind, None).unwrap();
            let first = game.reset(3);
            let (w, h) = (game.width(), game.height());
            let mut frames = first.frame.clone();
            let mut positions = vec![(first.player.x as i64, first.player.y as i64)];
            // The session: reset writes the first frame, every later frame is linked in.
            let mut map = SpatialMap::new(w, h, cfg.world_rows);
            map.write_frame(&first.frame, positions[0]);
            let mut session_crops = vec![map.local_crop(crop.0, crop.1)];
            for &a in &script {
                session_crops.push(map.local_crop(crop.0, crop.1));
                let s = game.step(a);
                let link = map.observe(&s.frame, cfg.link_range, cfg.mask);
                positions.push((s.player.x as i64, s.player.y as i64));
                assert_eq!(link.position, positions[positions.len() - 1], "{kind:?}");
                frames.extend_from_slice(&s.frame);
            }
            // session_crops[k] fed frame k (k = 0 is the reset pass).
            for start in [0usize, 5, 17] {
                let len = 8;
                let replay = replay_local_maps(
                    SpatialMap::new(w, h, cfg.world_rows),
                    &frames,
                    &positions,
                    start,
                    len,
                    crop,
                );
                for k in 1..len {
                    assert!(
                        replay[k] == session_crops[start + k],
                        "{kind:?}: clip at {start}, frame {k}"
                    );
                }
                // The clip's first frame is a reset: the map up to and including itself.
                assert!(replay[0] == replay[1]);
            }
        }
    }

    #[test]
    fn map_encoder_gives_the_configured_tokens() {
        let dev = Default::default();
        for (cfg, tokens) in [
            (MapEncoderConfig::tiny(76, 128, [5, 8]), 40),
            (MapEncoderConfig::paper(148, 148, [6, 8]), 48),
        ] {
            let enc = cfg.init::<NdArray>(&dev).unwrap();
            let crops = crops_to_tensor::<NdArray>(
                &[vec![0u8; cfg.crop_height * cfg.crop_width * 3]],
                cfg.crop_height,
                cfg.crop_width,
                &dev,
            );
            assert_eq!(enc.forward(crops).dims(), [1, tokens, cfg.token_dim()]);
        }
    }
}
