//! `gamegen world bench`: frames per second of a world model on the CPU backends, and where a
//! frame's time goes.

use std::path::Path;

use burn::tensor::backend::Backend;
use gamegen_core::world::play::{Breakdown, PlayPath, Profiler};

use super::rollout::{self, LoadedWorld};
use crate::backend::on_compute_pool;

/// FPS of `frames` model-only frames (alternating runs of each action) after a warm-up, on
/// `path` (`None`: the backend's default).
pub fn fps<B: Backend>(
    model: &Path,
    frames: usize,
    steps: usize,
    path: Option<PlayPath>,
) -> anyhow::Result<f64> {
    on_compute_pool(|| {
        let (mut world, script) = warmed_up::<B>(model, frames, steps, path)?;
        let (r, _) = rollout::rollout(&mut world, &script, steps, 0, None)?;
        Ok(r.frames_per_second)
    })
}

/// Per-stage times of the [`fps`] frames (after the same warm-up), in wall time or, with
/// `cpu_time`, in CPU time of the measuring thread.
pub fn breakdown<B: Backend>(
    model: &Path,
    frames: usize,
    steps: usize,
    cpu_time: bool,
    path: Option<PlayPath>,
) -> anyhow::Result<Breakdown> {
    // On a pool thread, so that with RAYON_NUM_THREADS=1 all the work runs on the thread
    // whose CPU clock is read.
    on_compute_pool(|| {
        let (mut world, script) = warmed_up::<B>(model, frames, steps, path)?;
        let start = std::time::Instant::now();
        let mut clock: Box<dyn FnMut() -> f64> = if cpu_time {
            Box::new(thread_cpu_clock()?)
        } else {
            Box::new(move || start.elapsed().as_secs_f64())
        };
        let clock: &mut dyn FnMut() -> f64 = &mut *clock;
        let mut prof = Profiler::new(clock);
        for &a in &script {
            world
                .session
                .step_profiled(a as u32, steps, Some(&mut prof))?;
        }
        Ok(prof.breakdown)
    })
}

/// The model loaded and warmed up by 5 frames, and the script of the `frames` frames to
/// measure. Called on the compute pool thread that runs the measurement, so that the warm-up
/// fills that thread's caches and scratch buffers.
fn warmed_up<B: Backend>(
    model: &Path,
    frames: usize,
    steps: usize,
    path: Option<PlayPath>,
) -> anyhow::Result<(LoadedWorld<B>, Vec<u8>)> {
    let device = Default::default();
    let mut world = rollout::load::<B>(model, 0, &device)?;
    if let Some(path) = path {
        world.session.set_path(path);
    }
    let n = world.checkpoint.game.num_actions() as usize;
    let mut script: Vec<u8> = (0..frames + 5).map(|i| ((i / 10) % n) as u8).collect();
    rollout::rollout(&mut world, &script[..5], steps, 0, None)?;
    script.drain(..5);
    Ok((world, script))
}

/// Seconds of CPU time the calling thread has used (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`,
/// exact to the nanosecond, unlike `/proc/thread-self/schedstat`, which moves in ticks).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_clock() -> anyhow::Result<impl FnMut() -> f64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let read = || {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec (two 64-bit fields on 64-bit Linux) and
        // the clock id is a constant the kernel defines; nothing else is touched.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
    };
    anyhow::ensure!(read().is_some(), "the thread CPU clock is not available");
    Ok(move || read().unwrap_or(0.0))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_clock() -> anyhow::Result<Box<dyn FnMut() -> f64>> {
    anyhow::bail!("--cpu-time is only available on 64-bit Linux")
}
