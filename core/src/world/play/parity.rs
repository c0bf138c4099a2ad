//! The play paths against each other.
//!
//! [`WorldSession::kernel_parity`] compares the CPU kernels with the backend in the build that
//! runs (the browser tests call it on both wasm builds, whose kernels only run there). The
//! tests below hold the parity table: one list of cases, each run on every play path against the
//! reference with a stated tolerance, per module (DiT pass, v head, play decoder, map CNN, the
//! element-wise functions and attention) and for whole steps of the shipped models.

use burn::tensor::backend::Backend;
use serde::Serialize;

use super::frame::read_f32;
use super::{PlayPath, SessionError, WorldSession};

/// Largest differences between the CPU kernels ([`PlayPath::Host`]) and the backend's fused
/// operations ([`PlayPath::Fused`]) over a few frames played from the same state
/// ([`WorldSession::kernel_parity`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KernelParity {
    pub frames: usize,
    /// Over every value of every frame's clean latent.
    pub latent_max_abs: f32,
    /// Over every byte of every frame's RGB8 image.
    pub rgb_max_abs: u8,
}

impl<B: Backend> WorldSession<B> {
    /// The CPU kernels against the backend's fused operations, in the build that runs: from the
    /// current state, plays `actions` (generate, decode, link) once with each, with the same
    /// noise, and gives the largest differences. The session is left as it was. The unit tests
    /// compare the two natively; this is for builds whose kernels only run elsewhere (the
    /// browser's wasm builds, one with relaxed SIMD).
    pub fn kernel_parity(
        &mut self,
        actions: &[u32],
        ddim_steps: usize,
    ) -> Result<KernelParity, SessionError> {
        let saved = (
            self.z.clone(),
            self.record.clone(),
            self.map.clone(),
            self.rng.clone(),
            self.frames,
        );
        let path = self.path();
        let mut runs = Vec::with_capacity(2);
        for p in [PlayPath::Host, PlayPath::Fused] {
            self.set_path(p);
            let played: Result<Vec<_>, _> = actions
                .iter()
                .map(|&a| {
                    let (latent, events) = self.step_latent(a, ddim_steps)?;
                    let rgb = self.decode_rgb8(latent.clone());
                    self.finish(rgb.clone(), events)?;
                    Ok((read_f32(latent.into_data()), rgb))
                })
                .collect();
            (self.z, self.record, self.map, self.rng, self.frames) = saved.clone();
            match played {
                Ok(frames) => runs.push(frames),
                Err(e) => {
                    self.set_path(path);
                    return Err(e);
                }
            }
        }
        self.set_path(path);
        let mut parity = KernelParity {
            frames: actions.len(),
            latent_max_abs: 0.0,
            rgb_max_abs: 0,
        };
        for ((la, fa), (lb, fb)) in runs[0].iter().zip(&runs[1]) {
            for (a, b) in la.iter().zip(lb) {
                parity.latent_max_abs = parity.latent_max_abs.max((a - b).abs());
            }
            for (a, b) in fa.iter().zip(fb) {
                parity.rgb_max_abs = parity.rgb_max_abs.max(a.abs_diff(*b));
            }
        }
        Ok(parity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::StatePass;
    use crate::world::ddim::{ddim_plan, ddim_update, gaussian};
    use crate::world::model::SpatialConfig;
    use crate::world::model::spatial::{MapEncoderConfig, MatchMask, crops_to_tensor};
    use crate::world::model::{WorldConfig, WorldModel};
    use crate::world::play::cell_host;
    use crate::world::play::frame::tensor_to_rgb8;
    use crate::world::record::events_from_probs;
    use crate::world::schedule::{CLIP_NOISE, NUM_TIMESTEPS, Schedule};
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tensor};

    type B = NdArray;

    /// What a case gives on one path: float values (compared as `max |diff| <= tol * max(1,
    /// max |reference|)`) or RGB8 bytes (compared as at most `most` apart, and at most a
    /// `share` of them differing at all: values on a rounding boundary).
    enum Values {
        Floats(Vec<f32>),
        Bytes(Vec<u8>),
    }

    enum Tolerance {
        Relative(f32),
        Bytes { most: u8, share: f32 },
    }

    /// One module run on one path; the reference path is what every other is compared with.
    struct Case {
        name: &'static str,
        tolerance: Tolerance,
        run: fn(&Fixture, PlayPath) -> Values,
    }

    /// A seeded tiny Traveler model with every module (record, map, play decoder) and inputs.
    struct Fixture {
        model: WorldModel<B>,
        vae: crate::world::model::Vae<B>,
        cfg: WorldConfig,
    }

    fn traveler_tiny() -> WorldConfig {
        let mut cfg = WorldConfig::tiny(96, 96, 3, 1).with_spatial(SpatialConfig {
            encoder: MapEncoderConfig::tiny(76, 128, [5, 8]),
            world_rows: (20, 96),
            link_range: (10, 0),
            mask: MatchMask::All,
        });
        cfg.vae.light_decoder =
            Some(crate::world::model::light_decoder::LightDecoderConfig::tiny());
        // The gated state update and the re-noised state pass: the shipped models' whole-step
        // cases below cover the original cell and sampler.
        cfg.dit.state_update = crate::world::model::StateUpdate::Gated;
        cfg.state_pass = crate::world::StatePass::Renoise { level: 249 };
        cfg
    }

    fn fixture() -> Fixture {
        let cfg = traveler_tiny();
        let dev = Default::default();
        Fixture {
            model: cfg.init_seeded::<B>(11, &dev).unwrap(),
            vae: cfg.vae.init_seeded::<B>(12, &dev).unwrap(),
            cfg,
        }
    }

    fn random<const D: usize>(shape: [usize; D], spread: f64) -> Tensor<B, D> {
        Tensor::random(
            shape,
            Distribution::Normal(0.0, spread),
            &Default::default(),
        )
    }

    fn crop(f: &Fixture) -> Vec<u8> {
        let e = &f.cfg.spatial.as_ref().unwrap().encoder;
        (0..e.crop_height * e.crop_width * 3)
            .map(|i| (i * 31 % 251) as u8)
            .collect()
    }

    fn floats<const D: usize>(t: Tensor<B, D>) -> Values {
        Values::Floats(read_f32(t.into_data()))
    }

    fn dit_pass(f: &Fixture, path: PlayPath) -> Values {
        let dit = &f.model.dit;
        let [c, h, w] = f.cfg.vae.latent_shape();
        let zc = f.cfg.dit.z_channels;
        // Fixed inputs: seeded by the tensor values themselves, not the backend's RNG.
        let z_prev = Tensor::<B, 4>::from_data(
            burn::tensor::TensorData::new(
                (0..zc * h * w)
                    .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                    .collect::<Vec<_>>(),
                [1, zc, h, w],
            ),
            &Default::default(),
        );
        let x = Tensor::<B, 4>::from_data(
            burn::tensor::TensorData::new(
                (0..c * h * w)
                    .map(|i| ((i * 53 % 97) as f32 / 30.0) - 1.6)
                    .collect::<Vec<_>>(),
                [1, c, h, w],
            ),
            &Default::default(),
        );
        let map = f.model.encode_map(Some(crops_to_tensor(
            &[crop(f)],
            76,
            128,
            &Default::default(),
        )));
        let cond = dit.condition(&[1], Some(&[[0, 4, 2]]), map);
        let plain = dit.modulation(&[499.0], &cond);
        let positions = dit.positions(&Default::default());
        match path {
            PlayPath::Reference => {
                floats(dit.forward_modulated(z_prev, x, &positions, &plain, &cond))
            }
            PlayPath::Fused => {
                let fm = dit.fuse(&plain).unwrap();
                floats(dit.forward_fused(z_prev, x, &positions, &fm, &cond))
            }
            PlayPath::Host => {
                let host = cell_host::dit(dit);
                let m = cell_host::modulation(&dit.fuse(&plain).unwrap());
                let extra = read_f32(cond.extra().unwrap().clone().into_data());
                Values::Floats(host.forward(
                    &read_f32(z_prev.into_data()),
                    &read_f32(x.into_data()),
                    &extra,
                    &m,
                ))
            }
        }
    }

    fn v_head(f: &Fixture, path: PlayPath) -> Values {
        let [c, h, w] = f.cfg.vae.latent_shape();
        let zc = f.cfg.dit.z_channels;
        let z = random([1, zc, h, w], 1.5);
        let x = random([1, c, h, w], 1.0);
        match path {
            PlayPath::Reference => floats(f.model.head.forward(z, x)),
            PlayPath::Fused => floats(f.model.head.forward_fused(z, x)),
            PlayPath::Host => Values::Floats(cell_host::v_head(&f.model.head).forward(
                &read_f32(z.into_data()),
                &read_f32(x.into_data()),
                h,
                w,
            )),
        }
    }

    fn play_decoder(f: &Fixture, path: PlayPath) -> Values {
        let [c, h, w] = f.cfg.vae.latent_shape();
        let latent = random([1, c, h, w], 1.5);
        match path {
            PlayPath::Reference => Values::Bytes(tensor_to_rgb8(f.vae.decode_latent(latent))),
            PlayPath::Fused => Values::Bytes(tensor_to_rgb8(f.vae.decode_latent_fused(latent))),
            PlayPath::Host => {
                let scale = f.cfg.vae.latent_scale as f32;
                let unscaled: Vec<f32> = read_f32(latent.into_data())
                    .iter()
                    .map(|v| v / scale)
                    .collect();
                let decoder = cell_host::light_decoder(f.vae.light.as_ref().unwrap());
                Values::Bytes(decoder.decode_rgb8(&unscaled, c, h, w))
            }
        }
    }

    fn vae_decoder(f: &Fixture, path: PlayPath) -> Values {
        // The VAE's own decoder (models without a play decoder): the CPU path runs the
        // backend's fused form.
        let [c, h, w] = f.cfg.vae.latent_shape();
        let latent = random([1, c, h, w], 1.5);
        let mut vae = f.vae.clone();
        vae.light = None;
        match path {
            PlayPath::Reference => Values::Bytes(tensor_to_rgb8(vae.decode_latent(latent))),
            PlayPath::Fused | PlayPath::Host => {
                Values::Bytes(tensor_to_rgb8(vae.decode_latent_fused(latent)))
            }
        }
    }

    fn map_cnn(f: &Fixture, path: PlayPath) -> Values {
        let crop = crop(f);
        let enc = f.model.map_encoder.as_ref().unwrap();
        match path {
            PlayPath::Reference | PlayPath::Fused => {
                floats(enc.forward(crops_to_tensor(&[crop], 76, 128, &Default::default())))
            }
            PlayPath::Host => {
                Values::Floats(cell_host::map_encoder(enc).encode_rgb8(&crop, 76, 128))
            }
        }
    }

    fn activations(_: &Fixture, path: PlayPath) -> Values {
        let x: Tensor<B, 2> = random([67, 256], 3.0);
        match path {
            PlayPath::Reference | PlayPath::Fused => {
                let g = burn::tensor::activation::gelu(x.clone());
                let s = burn::tensor::activation::silu(x.clone());
                let t = burn::tensor::activation::tanh(x);
                floats(Tensor::cat(vec![g, s, t], 0))
            }
            PlayPath::Host => {
                let values = read_f32(x.into_data());
                let mut out = Vec::new();
                for f in [
                    gamegen_kernels::elementwise::gelu_slice as fn(&mut [f32]),
                    gamegen_kernels::elementwise::silu_slice,
                    gamegen_kernels::elementwise::tanh_slice,
                ] {
                    let mut v = values.clone();
                    f(&mut v);
                    out.extend(v);
                }
                Values::Floats(out)
            }
        }
    }

    fn attention(_: &Fixture, path: PlayPath) -> Values {
        // Uneven heads and a sequence that is no multiple of a vector width; large logits
        // exercise the max subtraction.
        let (l, heads, hd) = (67, 4, 16);
        let d = heads * hd;
        let qkv: Tensor<B, 3> = random([1, l, 3 * d], 3.0);
        match path {
            PlayPath::Reference => {
                let t = qkv.reshape([1, l, 3, heads, hd]).permute([2, 0, 3, 1, 4]);
                let q: Tensor<B, 4> = t.clone().narrow(0, 0, 1).reshape([1, heads, l, hd]);
                let k: Tensor<B, 4> = t.clone().narrow(0, 1, 1).reshape([1, heads, l, hd]);
                let v: Tensor<B, 4> = t.narrow(0, 2, 1).reshape([1, heads, l, hd]);
                let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt());
                let out = burn::tensor::activation::softmax(scores, 3).matmul(v);
                floats(out.swap_dims(1, 2).reshape([1, l, d]))
            }
            PlayPath::Fused => floats(crate::world::model::dit::self_attention(qkv, heads)),
            PlayPath::Host => {
                let mut out = vec![0.0; l * d];
                gamegen_kernels::attention::attention(
                    &read_f32(qkv.into_data()),
                    &mut out,
                    l,
                    heads,
                    hd,
                );
                Values::Floats(out)
            }
        }
    }

    /// The parity table: every module a frame runs, on every path, against the reference.
    const CASES: &[Case] = &[
        Case {
            name: "DiT pass",
            tolerance: Tolerance::Relative(1e-4),
            run: dit_pass,
        },
        Case {
            name: "v head",
            tolerance: Tolerance::Relative(1e-5),
            run: v_head,
        },
        Case {
            name: "play decoder",
            tolerance: Tolerance::Bytes {
                most: 1,
                share: 0.01,
            },
            run: play_decoder,
        },
        Case {
            name: "VAE decoder",
            tolerance: Tolerance::Bytes {
                most: 1,
                share: 0.01,
            },
            run: vae_decoder,
        },
        Case {
            name: "map CNN",
            tolerance: Tolerance::Relative(1e-5),
            run: map_cnn,
        },
        Case {
            name: "GELU, SiLU, tanh",
            tolerance: Tolerance::Relative(1e-5),
            run: activations,
        },
        Case {
            name: "attention",
            tolerance: Tolerance::Relative(5e-6),
            run: attention,
        },
    ];

    #[test]
    fn every_path_matches_the_reference_per_module() {
        let f = fixture();
        for case in CASES {
            // Every path draws its random inputs from the same backend seed.
            let on = |path| {
                B::seed(&Default::default(), 42);
                (case.run)(&f, path)
            };
            let reference = on(PlayPath::Reference);
            for path in [PlayPath::Fused, PlayPath::Host] {
                match (&reference, on(path), &case.tolerance) {
                    (Values::Floats(want), Values::Floats(got), Tolerance::Relative(tol)) => {
                        assert_eq!(want.len(), got.len(), "{}: {path} size", case.name);
                        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                        let worst = want
                            .iter()
                            .zip(&got)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0, f32::max);
                        assert!(
                            worst <= tol * scale,
                            "{}: {path} differs by {worst} at scale {scale}",
                            case.name
                        );
                    }
                    (Values::Bytes(want), Values::Bytes(got), Tolerance::Bytes { most, share }) => {
                        assert_eq!(want.len(), got.len(), "{}: {path} size", case.name);
                        let off = want.iter().zip(&got).filter(|(a, b)| a != b).count();
                        let far = want
                            .iter()
                            .zip(&got)
                            .map(|(a, b)| a.abs_diff(*b))
                            .max()
                            .unwrap_or(0);
                        assert!(
                            far <= *most && off as f32 <= share * want.len() as f32,
                            "{}: {path}: {off} bytes differ, by up to {far}",
                            case.name
                        );
                        assert!(
                            want.iter().any(|&v| v > 10 && v < 245),
                            "{}: degenerate frame",
                            case.name
                        );
                    }
                    _ => panic!("{}: a case gives one kind of values", case.name),
                }
            }
        }
    }

    #[test]
    fn the_default_path_follows_the_backend() {
        assert_eq!(
            PlayPath::for_backend::<NdArray>(&Default::default()),
            PlayPath::Host
        );
        assert_eq!(
            PlayPath::for_backend::<burn::backend::Flex>(&Default::default()),
            PlayPath::Host
        );
        assert_eq!(
            PlayPath::for_backend::<burn::backend::Autodiff<NdArray>>(&Default::default()),
            PlayPath::Fused
        );
        for p in PlayPath::ALL {
            assert_eq!(p.name().parse::<PlayPath>(), Ok(p));
        }
        assert!("gpu".parse::<PlayPath>().is_err());
    }

    fn session(cfg: &WorldConfig, seed: u64) -> WorldSession<B> {
        let dev = Default::default();
        let model = cfg.init_seeded::<B>(seed, &dev).unwrap();
        let vae = cfg.vae.init_seeded::<B>(seed + 1, &dev).unwrap();
        WorldSession::new(model, vae, cfg.clone(), seed, dev).unwrap()
    }

    /// A session of a shipped model reset from its game's first frame (seed 7), and the game's
    /// number of actions; `None` when the model directory is missing.
    fn shipped_session(
        dir: &str,
        path: PlayPath,
    ) -> Option<(WorldSession<burn::backend::Flex>, u32)> {
        use crate::world::WorldCheckpoint;
        use crate::world::checkpoint::{CONFIG_FILE, DYNAMICS_FILE, VAE_FILE};
        type F = burn::backend::Flex;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir);
        let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?;
        let ck = WorldCheckpoint::from_json(&text).unwrap();
        let dev = Default::default();
        let vae = ck
            .load_vae::<F>(std::fs::read(dir.join(VAE_FILE)).unwrap(), &dev)
            .unwrap();
        let model = ck
            .load_dynamics::<F>(std::fs::read(dir.join(DYNAMICS_FILE)).unwrap(), &dev)
            .unwrap();
        let mut s = WorldSession::new(model, vae, ck.model.clone(), 7, dev).unwrap();
        s.set_path(path);
        let mut game = crate::games::new_game(ck.game, None).unwrap();
        let first = game.reset(7);
        s.reset(
            &first.frame,
            first.score,
            (first.player.x as i64, first.player.y as i64),
        )
        .unwrap();
        Some((s, ck.game.num_actions() as u32))
    }

    /// A shipped checkpoint's session, frame by frame: RGB8 checksum and mean, and a sample of
    /// the clean latent. `core/src/world/testdata/session-fixtures.json` holds these values as
    /// the reference path (the operations training runs) produced them on flex; the test checks
    /// the code gives the same frames (bytes equal) and latents (to float rounding) on the
    /// reference path, and the same up to float rounding on the fused and CPU-kernel paths.
    /// `GAMEGEN_WRITE_FIXTURES=1` rewrites the file.
    fn shipped_session_trace(dir: &str, path: PlayPath) -> Option<serde_json::Value> {
        let (mut s, n) = shipped_session(dir, path)?;
        let mut frames = Vec::new();
        for (i, steps) in [4usize, 4, 4, 1, 4, 2].into_iter().enumerate() {
            let a = (i as u32 / 2) % n;
            let (x, events) = s.step_latent(a, steps).unwrap();
            let lat = read_f32(x.clone().into_data());
            let rgb = s.decode_rgb8(x);
            let (_, info) = s.finish(rgb.clone(), events).unwrap();
            let stride = (lat.len() / 64).max(1);
            let sample: Vec<f32> = lat.iter().step_by(stride).copied().collect();
            let mut h: u64 = 0xcbf29ce484222325;
            for &b in &rgb {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            let mean = rgb.iter().map(|&v| v as f64).sum::<f64>() / rgb.len() as f64;
            frames.push(serde_json::json!({
                "steps": steps,
                "action": a,
                "events": info.events,
                "score": info.score,
                "link": info.link.map(|l| [l.position.0, l.position.1]),
                "fnv": format!("{h:016x}"),
                "mean": mean,
                "latent_abs_sum": lat.iter().map(|v| v.abs() as f64).sum::<f64>(),
                "latent_sample": sample,
            }));
        }
        Some(serde_json::json!(frames))
    }

    #[test]
    fn kernel_parity_is_small_and_leaves_the_session_as_it_was() {
        let open = || shipped_session("models/world-pacman", PlayPath::Host).expect("model");
        let ((mut a, n), (mut b, _)) = (open(), open());
        let actions: Vec<u32> = (0..3).map(|i| (i + 1) % n).collect();
        let p = a.kernel_parity(&actions, 4).unwrap();
        assert_eq!(p.frames, 3);
        assert!(p.latent_max_abs < 1e-4 && p.rgb_max_abs <= 2, "{p:?}");
        // Same state, same kernels and noise afterwards: the next frames equal a twin's.
        assert_eq!(a.path(), PlayPath::Host);
        for action in [1, 2] {
            assert_eq!(a.step(action, 4).unwrap(), b.step(action, 4).unwrap());
        }
    }

    #[test]
    fn shipped_models_give_the_fixture_frames() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/world/testdata/session-fixtures.json");
        let dirs = [
            "models/world-pong",
            "models/world-traveler",
            "models/world-pacman",
        ];
        let trace = |path: PlayPath| {
            let mut m = serde_json::Map::new();
            for dir in dirs {
                if let Some(t) = shipped_session_trace(dir, path) {
                    m.insert(dir.to_string(), t);
                }
            }
            m
        };
        if std::env::var("GAMEGEN_WRITE_FIXTURES").is_ok() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&serde_json::Value::Object(trace(
                PlayPath::Reference,
            )))
            .unwrap();
            std::fs::write(&path, text).unwrap();
            return;
        }
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Unfused: the operations training runs, so the very bytes the code before gave.
        // Fused (the default), with the backend's or the host's kernels: the same up to float
        // rounding.
        for path in PlayPath::ALL {
            let fused = path != PlayPath::Reference;
            let now = trace(path);
            assert!(!now.is_empty(), "no shipped world model found");
            for (dir, frames) in &now {
                let want = saved[dir].as_array().unwrap();
                let got = frames.as_array().unwrap();
                assert_eq!(want.len(), got.len());
                for (i, (w, g)) in want.iter().zip(got).enumerate() {
                    for key in ["steps", "action", "events", "score", "link"] {
                        assert_eq!(w[key], g[key], "{dir} {path} frame {i}: {key}");
                    }
                    let ws: Vec<f64> = serde_json::from_value(w["latent_sample"].clone()).unwrap();
                    let gs: Vec<f64> = serde_json::from_value(g["latent_sample"].clone()).unwrap();
                    let worst = ws
                        .iter()
                        .zip(&gs)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    if !fused {
                        // Not bit-exact across machines: the CPU backend's matmul splits its
                        // reductions by the threads it gets, so sums round differently (CI saw
                        // 2e-5). Ten times tighter than the fused bound below.
                        assert!(
                            worst < 1e-4,
                            "{dir} unfused frame {i}: latent differs by {worst}"
                        );
                        continue;
                    }
                    let (wm, gm) = (w["mean"].as_f64().unwrap(), g["mean"].as_f64().unwrap());
                    let (wa, ga) = (
                        w["latent_abs_sum"].as_f64().unwrap(),
                        g["latent_abs_sum"].as_f64().unwrap(),
                    );
                    eprintln!(
                        "{dir} {path} frame {i}: latent sample max |diff| {worst:.2e}, \
                         latent |sum| {ga:.4} vs {wa:.4}, RGB mean {gm:.4} vs {wm:.4}, \
                         bytes {}",
                        if w["fnv"] == g["fnv"] {
                            "equal"
                        } else {
                            "differ"
                        }
                    );
                    assert!(worst < 1e-3, "{dir} frame {i}: latent differs by {worst}");
                    assert!((wm - gm).abs() < 0.05, "{dir} frame {i}: mean {gm} vs {wm}");
                    assert!(
                        (wa - ga).abs() <= 1e-4 * wa.max(1.0),
                        "{dir} frame {i}: latent |sum| {ga} vs {wa}"
                    );
                }
            }
        }
    }

    /// One frame with nothing cached: the condition built for the frame and every pass
    /// computing its own position embedding and modulation (`WorldModel::pass`), in a plain
    /// DDIM loop written out here. Returns the clean latent and the frame.
    fn reference_step(s: &mut WorldSession<B>, action: u32, steps: usize) -> (Vec<f32>, Vec<u8>) {
        let p = s.begin(action, steps).unwrap();
        let probs = p.probs.clone().map(|t| read_f32(t.into_data()));
        let events = match (probs, &s.config.record) {
            (Some(probs), Some(rc)) => events_from_probs(&probs, rc.threshold),
            _ => 0,
        };
        if let Some(rec) = &mut s.record {
            rec.apply(events);
        }
        let digits = s.record.as_ref().map(|r| [r.digits()]);
        let cond = s
            .model
            .condition(&[p.action], digits.as_ref().map(|d| &d[..]), s.map_crop());
        let [c, h, w] = s.config.vae.latent_shape();
        let noise = gaussian(&mut s.rng, [1, c, h, w], &s.device);
        let plan = ddim_plan(steps, NUM_TIMESTEPS);
        let mut x = noise.clamp(-CLIP_NOISE, CLIP_NOISE);
        let state_noise = match s.config.state_pass {
            StatePass::Relabel => None,
            StatePass::Renoise { .. } => Some(gaussian(&mut s.rng, [1, c, h, w], &s.device)),
        };
        for &(t, t_next) in &plan.pairs {
            let (_, v) = s
                .model
                .pass(p.z_prev.clone(), x.clone(), &[t as f32], &cond);
            x = ddim_update(&Schedule::default(), x, v, t, t_next);
        }
        let z = match (s.config.state_pass, state_noise) {
            (StatePass::Renoise { level }, Some(noise)) => {
                let (sa, sb) = Schedule::default().coefficients(level);
                let input = x.clone().mul_scalar(sa) + noise.mul_scalar(sb);
                s.model
                    .pass(p.z_prev.clone(), input, &[level as f32], &cond)
                    .0
            }
            _ => {
                let (t, t_next) = *plan.pairs.last().unwrap();
                let (z, v) = s
                    .model
                    .pass(p.z_prev.clone(), x.clone(), &[t as f32], &cond);
                x = ddim_update(&Schedule::default(), x, v, t, t_next);
                z
            }
        };
        s.z = Some(z);
        s.frames += 1;
        let latent = read_f32(x.clone().into_data());
        let frame = tensor_to_rgb8(s.vae.decode_latent(x));
        let (frame, _) = s.finish(frame, events).unwrap();
        (latent, frame)
    }

    #[test]
    fn cached_and_fused_frames_match_the_reference() {
        for path in PlayPath::ALL {
            let fused = path != PlayPath::Reference;
            for cfg in [traveler_tiny(), WorldConfig::tiny(96, 96, 3, 1)] {
                let first: Vec<u8> = (0..96 * 96 * 3).map(|i| (i * 13 % 241) as u8).collect();
                let mut new = session(&cfg, 9);
                new.set_path(path);
                let mut old = WorldSession::<B>::new(
                    new.model.clone(),
                    new.vae.clone(),
                    cfg.clone(),
                    9,
                    Default::default(),
                )
                .unwrap();
                new.reset(&first, 5, (0, 0)).unwrap();
                old.reset(&first, 5, (0, 0)).unwrap();
                for (i, steps) in [4usize, 4, 1, 4, 8, 2, 4].into_iter().enumerate() {
                    let a = (i as u32) % 3;
                    let (x, events) = new.step_latent(a, steps).unwrap();
                    let latent = read_f32(x.clone().into_data());
                    let frame = new.decode_rgb8(x);
                    let (frame, info) = new.finish(frame, events).unwrap();
                    let (ref_latent, ref_frame) = reference_step(&mut old, a, steps);
                    assert_eq!(info.score, old.record.as_ref().map(|r| r.score));
                    if !fused {
                        // The same operations on the same values: the same bits.
                        assert_eq!(latent, ref_latent, "frame {i}");
                        assert_eq!(frame, ref_frame, "frame {i}");
                        assert_eq!(new.map, old.map);
                        continue;
                    }
                    let scale = ref_latent.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                    let worst = latent
                        .iter()
                        .zip(&ref_latent)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= 1e-4 * scale,
                        "{path} frame {i}: latent differs by {worst}"
                    );
                    let off = frame.iter().zip(&ref_frame).filter(|(a, b)| a != b).count();
                    let most = frame
                        .iter()
                        .zip(&ref_frame)
                        .map(|(a, b)| a.abs_diff(*b))
                        .max()
                        .unwrap_or(0);
                    assert!(
                        most <= 1 && off * 1000 <= frame.len(),
                        "{path} frame {i}: {off} bytes differ, by up to {most}"
                    );
                }
            }
        }
    }
}
