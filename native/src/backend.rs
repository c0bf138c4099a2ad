//! Compute backends on native targets, chosen at run time.
//!
//! `core/` is generic over `B: Backend`; this module is where concrete backends are named. The
//! CPU backends are always compiled in (pure Rust, no system libraries); `wgpu` and `cuda` are
//! cargo features. [`with_backend!`](crate::with_backend) turns a [`BackendChoice`] into a
//! concrete type for generic code.

use serde::Serialize;

/// The pure-Rust CPU backend used for `--backend cpu` (the default). Flex was measured faster
/// than ndarray on our models (docs/benchmarks.md, `gamegen ae bench`).
pub type Cpu = burn::backend::Flex;
/// The other pure-Rust CPU backend, kept selectable for comparisons.
pub type NdArray = burn::backend::NdArray;
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
#[cfg(feature = "tch")]
pub type LibTorch = burn::backend::LibTorch;

/// A backend the user can ask for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The default pure-Rust CPU backend (flex).
    Cpu,
    /// burn-ndarray, the older pure-Rust CPU backend.
    Ndarray,
    /// burn-wgpu (Vulkan/Metal/DX12); needs the `wgpu` feature.
    Wgpu,
    /// burn-cuda (NVIDIA, kernels compiled by NVRTC at run time); needs the `cuda` feature.
    Cuda,
    /// LibTorch's CPU kernels through burn-tch; needs the `tch` feature (`cargo xtask
    /// build-torch`). About 2-3x faster than `cpu` per training step.
    Tch,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend `{0}` is not compiled into this binary; rebuild with `--features {0}`")]
    NotCompiled(&'static str),
    #[error("backend `{name}` is compiled in but unusable here: {why}")]
    Unusable { name: &'static str, why: String },
    #[error("--devices must be at least 1")]
    NoDevices,
    #[error("--devices {asked}: backend `{name}` has {available} device(s) to train on")]
    Devices {
        asked: usize,
        name: &'static str,
        available: usize,
    },
}

impl BackendChoice {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Tch => "tch",
        }
    }

    /// Fail early, with one clear line, when the chosen backend cannot run.
    pub fn ensure_usable(self) -> Result<(), BackendError> {
        match self {
            Self::Cpu | Self::Ndarray => Ok(()),
            Self::Tch => {
                if cfg!(feature = "tch") {
                    Ok(())
                } else {
                    Err(BackendError::NotCompiled("tch"))
                }
            }
            Self::Wgpu => {
                if cfg!(feature = "wgpu") {
                    Ok(())
                } else {
                    Err(BackendError::NotCompiled("wgpu"))
                }
            }
            Self::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    let probe = probe_cuda();
                    if probe.usable {
                        Ok(())
                    } else {
                        Err(BackendError::Unusable {
                            name: "cuda",
                            why: probe.detail,
                        })
                    }
                }
                #[cfg(not(feature = "cuda"))]
                Err(BackendError::NotCompiled("cuda"))
            }
        }
    }
}

/// `n` devices of backend `B` for data-parallel work, `first` first: on the GPU backends the
/// devices of `first`'s kind with indices 0..n (the first n GPUs), on the CPU backends, which
/// have one device, `first` repeated (so the data-parallel path runs, and is tested, on a CPU).
/// Asking for none, or for more GPUs than the backend sees, is an error.
pub fn devices<B: burn::tensor::backend::Backend>(
    first: &B::Device,
    choice: BackendChoice,
    n: usize,
) -> Result<Vec<B::Device>, BackendError> {
    use burn::prelude::DeviceOps;
    if n == 0 {
        return Err(BackendError::NoDevices);
    }
    match choice {
        BackendChoice::Cpu | BackendChoice::Ndarray | BackendChoice::Tch => {
            Ok(vec![first.clone(); n])
        }
        BackendChoice::Wgpu | BackendChoice::Cuda => {
            let available = B::device_count(first.to_id().type_id);
            if n > available {
                return Err(BackendError::Devices {
                    asked: n,
                    name: choice.name(),
                    available,
                });
            }
            Ok((0..n)
                .map(|i| {
                    let mut id = first.to_id();
                    id.index_id = i as u16;
                    B::Device::from_id(id)
                })
                .collect())
        }
    }
}

/// The most model replicas a training command starts on the pure-Rust CPU backends when
/// `--devices` is not given. Their kernels keep about one core busy per step, so on this
/// project's 2-core reference machine two replicas on their own threads are 1.25-1.7x faster
/// per step (docs/benchmarks.md); more were not measured, so more cores get more replicas only
/// when asked for.
pub const MAX_DEFAULT_CPU_REPLICAS: usize = 2;

/// How many devices a training command uses: `asked` when the user gave `--devices`, else
/// what the run being resumed recorded (its gradients were summed over that many shares, and
/// keeping the split keeps a resumed run bit-exact), else one per core on the pure-Rust CPU
/// backends (at most [`MAX_DEFAULT_CPU_REPLICAS`]), and one device on LibTorch (whose own
/// thread pool already uses every core) and on the GPU backends.
pub fn training_devices(
    choice: BackendChoice,
    asked: Option<usize>,
    recorded: Option<usize>,
) -> usize {
    if let Some(n) = asked.or(recorded) {
        return n;
    }
    match choice {
        BackendChoice::Cpu | BackendChoice::Ndarray => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_DEFAULT_CPU_REPLICAS),
        BackendChoice::Tch | BackendChoice::Wgpu | BackendChoice::Cuda => 1,
    }
}

/// Run `$body` with `$B` bound to the concrete backend type of `$choice` and `$dev` to its
/// default device. The body is generic code instantiated once per compiled-in backend.
#[macro_export]
macro_rules! with_backend {
    ($choice:expr, |$B:ident, $dev:ident| $body:expr) => {{
        use $crate::backend::BackendChoice as __Choice;
        match $choice {
            __Choice::Cpu => {
                type $B = $crate::backend::Cpu;
                let $dev: $crate::burn::tensor::Device<$B> = Default::default();
                $body
            }
            __Choice::Ndarray => {
                type $B = $crate::backend::NdArray;
                let $dev: $crate::burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            __Choice::Wgpu => {
                type $B = $crate::backend::Wgpu;
                let $dev: $crate::burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            __Choice::Cuda => {
                type $B = $crate::backend::Cuda;
                let $dev: $crate::burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "tch")]
            __Choice::Tch => {
                type $B = $crate::backend::LibTorch;
                let $dev: $crate::burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err($crate::backend::BackendError::NotCompiled(other.name()).into());
            }
        }
    }};
}

/// What `gamegen backends` reports for one backend.
#[derive(Clone, Debug, Serialize)]
pub struct BackendProbe {
    pub name: &'static str,
    pub compiled: bool,
    pub usable: bool,
    pub detail: String,
    pub devices: Vec<String>,
}

/// Probe every backend this binary knows of. Never panics: a missing driver library is
/// reported as "unusable", not as a crash.
pub fn probe_all() -> Vec<BackendProbe> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu_name = cpu_model_name().unwrap_or_else(|| "unknown CPU".to_string());
    vec![
        BackendProbe {
            name: "cpu",
            compiled: true,
            usable: true,
            detail: "burn-flex, pure Rust (default)".to_string(),
            devices: vec![format!("{cpu_name}, {threads} threads")],
        },
        BackendProbe {
            name: "ndarray",
            compiled: true,
            usable: true,
            detail: "burn-ndarray, pure Rust".to_string(),
            devices: vec![format!("{cpu_name}, {threads} threads")],
        },
        probe_tch(threads),
        probe_wgpu(),
        probe_cuda(),
    ]
}

fn cpu_model_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn probe_tch(threads: usize) -> BackendProbe {
    // Linked at build time: a binary that starts at all has LibTorch loaded.
    let compiled = cfg!(feature = "tch");
    BackendProbe {
        name: "tch",
        compiled,
        usable: compiled,
        detail: if compiled {
            "LibTorch (burn-tch), CPU".to_string()
        } else {
            "not compiled in (build with `cargo xtask build-torch`)".to_string()
        },
        devices: if compiled {
            vec![format!("CPU, {threads} threads")]
        } else {
            vec![]
        },
    }
}

#[cfg(feature = "wgpu")]
fn probe_wgpu() -> BackendProbe {
    use burn::backend::wgpu::{WgpuDevice, init_setup};
    // Initialising the default device enumerates adapters; it panics when none exists, so the
    // probe runs on a thread of its own and a panic becomes "unusable".
    let handle = std::thread::spawn(|| {
        let setup = init_setup::<burn::backend::wgpu::graphics::AutoGraphicsApi>(
            &WgpuDevice::DefaultDevice,
            Default::default(),
        );
        let info = setup.adapter.get_info();
        format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend)
    });
    match handle.join() {
        Ok(adapter) => BackendProbe {
            name: "wgpu",
            compiled: true,
            usable: true,
            detail: "burn-wgpu".to_string(),
            devices: vec![adapter],
        },
        Err(_) => BackendProbe {
            name: "wgpu",
            compiled: true,
            usable: false,
            detail: "no WebGPU-capable adapter (Vulkan/Metal/DX12) found".to_string(),
            devices: vec![],
        },
    }
}

#[cfg(not(feature = "wgpu"))]
fn probe_wgpu() -> BackendProbe {
    BackendProbe {
        name: "wgpu",
        compiled: false,
        usable: false,
        detail: "not compiled in (build with --features wgpu)".to_string(),
        devices: vec![],
    }
}

#[cfg(feature = "cuda")]
fn probe_cuda() -> BackendProbe {
    use cudarc::driver::result;
    let unusable = |why: String| BackendProbe {
        name: "cuda",
        compiled: true,
        usable: false,
        detail: why,
        devices: vec![],
    };
    // SAFETY: only checks whether libcuda can be dlopen'ed; no CUDA call is made before it.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return unusable("the NVIDIA driver library (libcuda.so) is not installed".to_string());
    }
    if let Err(e) = result::init() {
        return unusable(format!("cuInit failed: {e}"));
    }
    let count = match result::device::get_count() {
        Ok(n) => n,
        Err(e) => return unusable(format!("cannot count devices: {e}")),
    };
    if count == 0 {
        return unusable("driver present but no CUDA device".to_string());
    }
    let devices = (0..count)
        .map(|i| match result::device::get(i) {
            Ok(dev) => {
                let name = result::device::get_name(dev).unwrap_or_else(|_| "?".into());
                // SAFETY: `dev` was returned by `device::get`.
                let mem = unsafe { result::device::total_mem(dev) }.unwrap_or(0);
                format!(
                    "cuda:{i} {name}, {:.1} GiB",
                    mem as f64 / (1u64 << 30) as f64
                )
            }
            Err(e) => format!("cuda:{i} (error: {e})"),
        })
        .collect();
    BackendProbe {
        name: "cuda",
        compiled: true,
        usable: true,
        detail: "burn-cuda (cudarc, NVRTC)".to_string(),
        devices,
    }
}

#[cfg(not(feature = "cuda"))]
fn probe_cuda() -> BackendProbe {
    BackendProbe {
        name: "cuda",
        compiled: false,
        usable: false,
        detail: "not compiled in (build with --features cuda)".to_string(),
        devices: vec![],
    }
}

/// Run `f` on a thread of the CPU backend's compute pool (rayon's global pool) and wait.
///
/// Why: burn-flex splits its kernels with rayon. Called from a thread outside the pool, every
/// split kernel is handed to a pool thread and the caller sleeps until it is done, a
/// cross-thread wake-up per operation; a world-model frame is hundreds of small operations,
/// so those hand-offs cost more than the arithmetic they split. From inside the pool the same
/// calls run in place (and still share work with idle pool threads).
pub fn on_compute_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    use super::{BackendChoice, MAX_DEFAULT_CPU_REPLICAS, on_compute_pool, training_devices};

    #[test]
    fn training_devices_prefer_the_flag_then_the_run_then_the_cores() {
        assert_eq!(training_devices(BackendChoice::Cpu, Some(3), Some(1)), 3);
        assert_eq!(training_devices(BackendChoice::Cpu, None, Some(1)), 1);
        assert_eq!(training_devices(BackendChoice::Cuda, None, None), 1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            training_devices(BackendChoice::Cpu, None, None),
            cores.min(MAX_DEFAULT_CPU_REPLICAS)
        );
    }

    #[test]
    fn compute_pool_runs_the_closure_on_a_pool_thread_and_returns_its_value() {
        assert!(rayon::current_thread_index().is_none());
        let (inside, value) = on_compute_pool(|| (rayon::current_thread_index().is_some(), 41 + 1));
        assert!(inside);
        assert_eq!(value, 42);
        // Nested parallel work from inside the pool finishes (no self-wait).
        let sum: u64 = on_compute_pool(|| {
            use rayon::prelude::*;
            (0..10_000u64).into_par_iter().sum()
        });
        assert_eq!(sum, 49_995_000);
    }
}
