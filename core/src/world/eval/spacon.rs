//! SpaCon (MaaG): do places the player comes back to look the way they looked before?
//!
//! The evaluation keeps its own map of the *generated* frames (independent of any spatial module
//! the model may or may not have), each written at the position where the real game's camera
//! stood for that frame (the recorded player position: the model was given the real actions, so
//! that is where its view should be). A world pixel of frame `t` is *newly revealed* when it
//! was outside frame `t - 1`'s view; if the map already holds it (the player saw it earlier),
//! the generated pixel is compared with the stored one (SpaCon, MaaG's definition) and with the
//! real frame's pixel at the same place (SpaCon against the ground truth). Both are PSNRs over
//! all such pixels of an episode. Only the world rows count (not the score bar).

use crate::world::model::spatial::SpatialMap;

/// Squared-error sums and pixel counts of one episode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpaConSums {
    pub self_se: f64,
    pub truth_se: f64,
    /// Newly revealed pixels the map already held.
    pub pixels: u64,
}

impl SpaConSums {
    /// (PSNR against the stored map, PSNR against the real frames), `None` without revisits.
    pub fn psnr(&self) -> Option<(f64, f64)> {
        if self.pixels == 0 {
            return None;
        }
        let db = |se: f64| {
            let mse = (se / (3 * self.pixels) as f64).max(1e-10);
            (10.0 * (255.0f64 * 255.0 / mse).log10()).min(100.0)
        };
        Some((db(self.self_se), db(self.truth_se)))
    }
}

pub struct SpaConTracker {
    map: SpatialMap,
    width: usize,
    world_rows: (usize, usize),
    prev: Option<(i64, i64)>,
    /// Running sums, and the sums after each frame (for prefixes of the rollout).
    pub sums: SpaConSums,
    pub per_frame: Vec<SpaConSums>,
}

impl SpaConTracker {
    pub fn new(width: usize, height: usize, world_rows: (usize, usize)) -> Self {
        Self {
            map: SpatialMap::new(width, height, world_rows),
            width,
            world_rows,
            prev: None,
            sums: SpaConSums::default(),
            per_frame: Vec::new(),
        }
    }

    /// The real first frame of the rollout (the model starts from it).
    pub fn start(&mut self, frame: &[u8], position: (i64, i64)) {
        self.map.write_frame(frame, position);
        self.prev = Some(position);
    }

    /// A generated frame, the real one, and where the view stands.
    pub fn step(&mut self, generated: &[u8], real: &[u8], position: (i64, i64)) {
        let (w, (r0, r1)) = (self.width, self.world_rows);
        let h = r1 - r0;
        let prev = self.prev.unwrap_or(position);
        let in_prev = |x: i64, y: i64| {
            x >= prev.0 && x < prev.0 + w as i64 && y >= prev.1 && y < prev.1 + h as i64
        };
        for row in 0..h {
            let y = position.1 + row as i64;
            for col in 0..w {
                let x = position.0 + col as i64;
                if in_prev(x, y) {
                    continue;
                }
                let Some(stored) = self.map.pixel(x, y) else {
                    continue;
                };
                let i = 3 * ((r0 + row) * w + col);
                for k in 0..3 {
                    let g = generated[i + k] as f64;
                    let ds = g - stored[k] as f64;
                    let dt = g - real[i + k] as f64;
                    self.sums.self_se += ds * ds;
                    self.sums.truth_se += dt * dt;
                }
                self.sums.pixels += 1;
            }
        }
        self.map.write_frame(generated, position);
        self.prev = Some(position);
        self.per_frame.push(self.sums.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1-D world strip of 4 px wide stripes; a view is 8 x 4 with a 1-row "score bar".
    fn view(x0: i64, corrupt: bool) -> Vec<u8> {
        let (w, h) = (8usize, 4usize);
        let mut f = vec![0u8; w * h * 3];
        for row in 1..h {
            for col in 0..w {
                let x = x0 + col as i64;
                let v = if (x.div_euclid(4)) % 2 == 0 { 200 } else { 40 };
                let v = if corrupt && x < 0 { 255 - v } else { v };
                let i = 3 * (row * w + col);
                f[i..i + 3].fill(v);
            }
        }
        f
    }

    #[test]
    fn only_stored_newly_revealed_pixels_count() {
        for corrupt in [false, true] {
            let mut t = SpaConTracker::new(8, 4, (1, 4));
            t.start(&view(0, false), (0, 0));
            t.step(&view(4, false), &view(4, false), (4, 0));
            assert_eq!(
                t.sums.pixels, 0,
                "walking into the unknown reveals nothing stored"
            );
            // Back to -4: x in 0..4 was seen at the start and is outside the previous view
            // (4..12); x in -4..0 was never seen (what is drawn there does not count).
            t.step(&view(-4, corrupt), &view(-4, false), (-4, 0));
            assert_eq!(t.sums.pixels, 4 * 3);
            assert_eq!(t.sums.psnr().unwrap().0, 100.0);
        }
    }

    #[test]
    fn revisits_count_and_score() {
        let mut t = SpaConTracker::new(8, 4, (1, 4));
        t.start(&view(0, false), (0, 0));
        t.step(&view(8, false), &view(8, false), (8, 0));
        // Back to 0: x 0..8 was seen at the start and is not in the view at 8 (8..16).
        let mut back = view(0, false);
        t.step(&back, &back, (0, 0));
        assert_eq!(t.sums.pixels, 8 * 3);
        assert_eq!(t.sums.psnr().unwrap(), (100.0, 100.0));
        // The same revisit drawn wrong: both PSNRs drop.
        let mut t2 = SpaConTracker::new(8, 4, (1, 4));
        t2.start(&view(0, false), (0, 0));
        t2.step(&view(8, false), &view(8, false), (8, 0));
        for v in back.iter_mut().skip(3 * 8) {
            *v = 255 - *v;
        }
        t2.step(&back, &view(0, false), (0, 0));
        let (s, r) = t2.sums.psnr().unwrap();
        assert!(s < 10.0 && r < 10.0, "{s} {r}");
        assert_eq!(t2.per_frame.len(), 2);
    }
}
