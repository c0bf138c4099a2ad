//! Training plumbing shared by the trainers (ByteCraft, world models): optimiser state that
//! survives a restart, and gradients computed data-parallel on several devices.
//!
//! Saved optimiser state is keyed by the order in which the model visits its parameters, not by
//! [`ParamId`]: ids are drawn afresh whenever a model is built (e.g. loaded from safetensors on
//! resume), the visiting order is a property of the architecture.

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer, SimpleOptimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// Errors of a saved optimiser state.
#[derive(Debug, thiserror::Error)]
pub enum OptimizerStateError {
    #[error("the optimiser state is truncated or not one of ours")]
    Format,
    #[error("the optimiser state was saved by {saved}, this run uses {wanted}")]
    Kind { saved: String, wanted: &'static str },
    #[error("the optimiser state covers {saved} parameters, the model has {model}")]
    Parameters { saved: usize, model: usize },
    #[error("cannot (de)serialise the optimiser state: {0}")]
    Record(String),
}

/// Header of a saved optimiser-state file (then length-prefixed chunks).
const STATE_MAGIC: &[u8] = b"gamegen-optimizer-state-1\n";

/// Every float parameter of `model` in visiting order.
pub fn parameter_order<B: Backend, M: Module<B>>(model: &M) -> Vec<ParamId> {
    struct Order(Vec<ParamId>);
    impl<B: Backend> ModuleVisitor<B> for Order {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut order = Order(Vec::new());
    model.visit(&mut order);
    order.0
}

/// The records of `optim` (moments, step counts) for the parameters of `model`, as bytes.
pub fn save_state<B, O, M>(
    optim: &OptimizerAdaptor<O, M, B>,
    model: &M,
) -> Result<Vec<u8>, OptimizerStateError>
where
    B: AutodiffBackend,
    O: SimpleOptimizer<B::InnerBackend>,
    M: AutodiffModule<B>,
{
    let record = optim.to_record();
    let items: Vec<Option<AdaptorRecord<O, B>>> = parameter_order(model)
        .iter()
        .map(|id| record.get(id).cloned())
        .collect();
    Recorder::<B>::record(
        &NamedMpkBytesRecorder::<FullPrecisionSettings>::new(),
        items,
        (),
    )
    .map_err(|e| OptimizerStateError::Record(e.to_string()))
}

/// `optim` with the records [`save_state`] wrote for a model of the same shape as `model`.
pub fn load_state<B, O, M>(
    optim: OptimizerAdaptor<O, M, B>,
    model: &M,
    bytes: &[u8],
    device: &B::Device,
) -> Result<OptimizerAdaptor<O, M, B>, OptimizerStateError>
where
    B: AutodiffBackend,
    O: SimpleOptimizer<B::InnerBackend>,
    M: AutodiffModule<B>,
{
    let order = parameter_order(model);
    // The recorder panics on some malformed input instead of failing; a damaged file must be
    // an error, so the decoding runs behind a panic guard.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Recorder::<B>::load(
            &NamedMpkBytesRecorder::<FullPrecisionSettings>::new(),
            bytes.to_vec(),
            device,
        )
    }));
    let items: Vec<Option<AdaptorRecord<O, B>>> = decoded
        .map_err(|_| OptimizerStateError::Format)?
        .map_err(|e| OptimizerStateError::Record(e.to_string()))?;
    if items.len() != order.len() {
        return Err(OptimizerStateError::Parameters {
            saved: items.len(),
            model: order.len(),
        });
    }
    let record = order
        .iter()
        .zip(items)
        .filter_map(|(&id, item)| Some((id, item?)))
        .collect();
    Ok(optim.load_record(record))
}

/// A state file: the magic header, then each chunk with its length.
pub fn write_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = STATE_MAGIC.to_vec();
    for chunk in chunks {
        out.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// The chunks of a file [`write_chunks`] wrote; a truncated or foreign file is an error.
pub fn read_chunks(bytes: &[u8]) -> Result<Vec<&[u8]>, OptimizerStateError> {
    let mut rest = bytes
        .strip_prefix(STATE_MAGIC)
        .ok_or(OptimizerStateError::Format)?;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(8)
            .ok_or(OptimizerStateError::Format)?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        let len = usize::try_from(len).map_err(|_| OptimizerStateError::Format)?;
        let (chunk, tail) = tail
            .split_at_checked(len)
            .ok_or(OptimizerStateError::Format)?;
        chunks.push(chunk);
        rest = tail;
    }
    Ok(chunks)
}

/// Runs the jobs of one data-parallel step, one job per replica. Core starts no threads (it
/// also compiles to wasm32): [`InOrder`] runs the jobs one after another on the calling thread,
/// and `gamegen_native::replicas::Threads` runs each on its own thread so that devices work at
/// the same time. The results do not depend on the runner: every job computes on its own
/// replica and writes its own result.
pub trait ReplicaRunner {
    /// Run `first` on the calling thread and every job of `rest`; return once all are done.
    fn run<'a>(&self, first: Box<dyn FnOnce() + 'a>, rest: Vec<Box<dyn FnOnce() + Send + 'a>>);
}

/// Every job on the calling thread, `first` first.
#[derive(Clone, Copy, Debug, Default)]
pub struct InOrder;

impl ReplicaRunner for InOrder {
    fn run<'a>(&self, first: Box<dyn FnOnce() + 'a>, rest: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        first();
        for job in rest {
            job();
        }
    }
}

/// Data parallelism: run `work` once per share, share `i` on `devices[i]`, and return each
/// share's gradients on the first device (with whatever else `work` returned), in share order.
///
/// Share 0 runs on `model` itself (which lives on the first device) on the calling thread;
/// every other share runs on a fork of it moved to its device (the broadcast of the weights; a
/// fork keeps the parameter ids, so the gradients map onto `model`), as a job of `runner`.
/// There must be no more shares than devices.
pub fn run_replicas<B, M, S, R, F>(
    runner: &impl ReplicaRunner,
    model: &M,
    devices: &[B::Device],
    shares: Vec<S>,
    work: F,
) -> Vec<(GradientsParams, R)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: Send,
    R: Send,
    F: Fn(&M, S, &B::Device) -> (GradientsParams, R) + Sync,
{
    assert!(
        !devices.is_empty() && shares.len() <= devices.len(),
        "{} shares for {} devices",
        shares.len(),
        devices.len()
    );
    let main = &devices[0];
    let mut shares = shares.into_iter();
    let Some(first) = shares.next() else {
        return Vec::new();
    };
    let rest: Vec<S> = shares.collect();
    let work = &work;
    let mut first_out = None;
    let mut rest_out: Vec<Option<(GradientsParams, R)>> = rest.iter().map(|_| None).collect();
    let jobs: Vec<Box<dyn FnOnce() + Send + '_>> = rest
        .into_iter()
        .zip(&devices[1..])
        .zip(rest_out.iter_mut())
        .map(|((share, device), slot)| {
            let replica = model.clone().fork(device);
            let job = move || {
                let (grads, out) = work(&replica, share, device);
                *slot = Some((grads.to_device(main, &replica), out));
            };
            Box::new(job) as Box<dyn FnOnce() + Send + '_>
        })
        .collect();
    runner.run(
        Box::new(|| first_out = Some(work(model, first, main))),
        jobs,
    );
    std::iter::once(first_out)
        .chain(rest_out)
        .map(|out| out.expect("the runner ran every replica's job"))
        .collect()
}

/// The sum of gradients of `model`'s parameters (all on one device).
pub fn sum_gradients<B, M>(
    model: &M,
    grads: impl IntoIterator<Item = GradientsParams>,
) -> GradientsParams
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let mut acc = GradientsAccumulator::<M>::new();
    for g in grads {
        acc.accumulate(model, g);
    }
    acc.grads()
}

/// `n` items cut into `parts` contiguous ranges whose lengths differ by at most one (the
/// longer first); no range is empty, so there are `min(parts, n)` of them.
pub fn even_ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1)).min(n);
    let (base, extra) = (n / parts.max(1), n % parts.max(1));
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The largest absolute difference between two equally long value lists.
    pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    }

    /// Every float parameter's values in visiting order (to compare two models).
    pub(crate) fn all_weights<B: Backend, M: Module<B>>(model: &M) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl<B: Backend> ModuleVisitor<B> for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let values = param.val().into_data().convert::<f32>();
                self.0.extend(values.to_vec::<f32>().unwrap());
            }
        }
        let mut c = Collect(Vec::new());
        model.visit(&mut c);
        c.0
    }

    #[test]
    fn even_ranges_cover_everything_once() {
        assert_eq!(even_ranges(5, 2), vec![0..3, 3..5]);
        assert_eq!(even_ranges(2, 4), vec![0..1, 1..2]);
        assert_eq!(even_ranges(6, 3), vec![0..2, 2..4, 4..6]);
        assert_eq!(even_ranges(4, 1), vec![0..4]);
        assert!(even_ranges(0, 2).is_empty());
    }

    #[test]
    fn chunks_round_trip_and_truncation_is_an_error() {
        let bytes = write_chunks([b"one".as_slice(), b"".as_slice(), b"three".as_slice()]);
        let chunks = read_chunks(&bytes).unwrap();
        assert_eq!(chunks, vec![b"one".as_slice(), b"", b"three"]);
        for cut in 1..bytes.len() - STATE_MAGIC.len() {
            // Cut inside a chunk: an error; cut at a chunk's end: visibly fewer chunks.
            let r = read_chunks(&bytes[..bytes.len() - cut]);
            assert!(
                r.as_ref().is_ok_and(|c| c.len() < 3) || r.is_err(),
                "cut {cut}: {r:?}"
            );
        }
        assert!(read_chunks(b"something else").is_err());
    }
}
