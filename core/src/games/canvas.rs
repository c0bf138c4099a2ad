//! A tiny RGB software rasteriser: the games only need filled rectangles and discs, and owning
//! it keeps every frame byte-identical on every platform (native and wasm).

/// An interleaved RGB8 image, row-major (`[height][width][3]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            rgb: vec![0; width * height * 3],
        }
    }

    pub fn clear(&mut self, c: [u8; 3]) {
        for px in self.rgb.chunks_exact_mut(3) {
            px.copy_from_slice(&c);
        }
    }

    /// Fill the rectangle `[x, x+w) x [y, y+h)`, clipped to the canvas (coordinates may be
    /// negative or past the edge: the camera scrolls objects in and out of view).
    pub fn rect(&mut self, x: i32, y: i32, w: i32, h: i32, c: [u8; 3]) {
        let x0 = x.max(0) as usize;
        let y0 = y.max(0) as usize;
        let x1 = (x + w).clamp(0, self.width as i32) as usize;
        let y1 = (y + h).clamp(0, self.height as i32) as usize;
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        for yy in y0..y1 {
            let row = &mut self.rgb[(yy * self.width + x0) * 3..(yy * self.width + x1) * 3];
            for px in row.chunks_exact_mut(3) {
                px.copy_from_slice(&c);
            }
        }
    }

    /// Fill a disc of `radius` pixels centred on (`cx`, `cy`), integer maths only.
    pub fn disc(&mut self, cx: i32, cy: i32, radius: i32, c: [u8; 3]) {
        let r2 = radius * radius + radius;
        for dy in -radius..=radius {
            for dx in -radius..=radius {
                if dx * dx + dy * dy <= r2 {
                    self.put(cx + dx, cy + dy, c);
                }
            }
        }
    }

    pub fn put(&mut self, x: i32, y: i32, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Interleaved RGBA8 (alpha 255), as a browser `ImageData` wants it.
    pub fn to_rgba(&self) -> Vec<u8> {
        rgb_to_rgba(&self.rgb)
    }
}

/// RGB8 to RGBA8 with opaque alpha.
pub fn rgb_to_rgba(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 4);
    for px in rgb.chunks_exact(3) {
        out.extend_from_slice(px);
        out.push(255);
    }
    out
}
