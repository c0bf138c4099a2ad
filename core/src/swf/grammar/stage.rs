//! Whether a placed shape can be seen: its drawn outline, moved by the placement's matrix, must
//! overlap the stage by at least a pixel each way, the matrix must not flatten it, and the
//! colour transform must leave it some opacity.

/// A MATRIX as read: scale x (a), skew (b, c) and scale y (d) in 16.16 fixed point, translation
/// in twips. `x' = a x + c y + tx`, `y' = b x + d y + ty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matrix {
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub d: i64,
    pub tx: i64,
    pub ty: i64,
}

impl Matrix {
    pub const IDENTITY: Matrix = Matrix {
        a: 1 << 16,
        b: 0,
        c: 0,
        d: 1 << 16,
        tx: 0,
        ty: 0,
    };
}

/// A box in twips: x_min, x_max, y_min, y_max.
pub type Box4 = [i64; 4];

/// One pixel, in twips: the least overlap that shows.
const PIXEL: f64 = 20.0;

/// Whether `shape` (the drawn box of a filled outline) placed with `m` covers part of `stage`.
pub fn on_stage(shape: Box4, m: &Matrix, stage: Box4) -> bool {
    let f = |v: i64| v as f64 / 65536.0;
    let (a, b, c, d) = (f(m.a), f(m.b), f(m.c), f(m.d));
    if (a * d - b * c).abs() < 1e-3 {
        return false;
    }
    let corners = [
        (shape[0], shape[2]),
        (shape[1], shape[2]),
        (shape[0], shape[3]),
        (shape[1], shape[3]),
    ];
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in corners {
        let (x, y) = (x as f64, y as f64);
        let px = a * x + c * y + m.tx as f64;
        let py = b * x + d * y + m.ty as f64;
        x0 = x0.min(px);
        x1 = x1.max(px);
        y0 = y0.min(py);
        y1 = y1.max(py);
    }
    let wide = x1.min(stage[1] as f64) - x0.max(stage[0] as f64);
    let high = y1.min(stage[3] as f64) - y0.max(stage[2] as f64);
    wide >= PIXEL && high >= PIXEL
}

/// The alpha an opaque fill keeps under a colour transform's alpha multiplier (8.8 fixed) and
/// offset, above zero.
pub fn opaque_enough(a_mult: i64, a_add: i64) -> bool {
    255 * a_mult / 256 + a_add > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGE: Box4 = [0, 4000, 0, 3000];

    #[test]
    fn placement_decides_visibility() {
        let square = [-200, 200, -200, 200];
        let at = |tx, ty| Matrix {
            tx,
            ty,
            ..Matrix::IDENTITY
        };
        assert!(on_stage(square, &at(1000, 1000), STAGE));
        assert!(on_stage(square, &at(0, 0), STAGE), "a quarter shows");
        assert!(
            !on_stage(square, &at(-1000, 1000), STAGE),
            "left of the stage"
        );
        assert!(
            !on_stage(square, &at(4190, 1000), STAGE),
            "less than a pixel shows"
        );
        let flat = Matrix {
            d: 0,
            ..at(1000, 1000)
        };
        assert!(!on_stage(square, &flat, STAGE));
        assert!(opaque_enough(256, 0) && !opaque_enough(0, 0) && opaque_enough(0, 10));
    }
}
