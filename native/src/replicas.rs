//! The threads of data-parallel training: core's trainers hand their replica jobs to a
//! [`ReplicaRunner`], and [`Threads`] runs every replica on its own thread so that several
//! devices (GPUs) compute at the same time. Core stays thread-free (it also runs in wasm32).

use gamegen_core::optim::ReplicaRunner;

/// Each job but the first on its own scoped thread; the first on the calling thread meanwhile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads;

impl ReplicaRunner for Threads {
    fn run<'a>(&self, first: Box<dyn FnOnce() + 'a>, rest: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        if rest.is_empty() {
            first();
            return;
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = rest.into_iter().map(|job| scope.spawn(job)).collect();
            first();
            for h in handles {
                h.join().expect("a replica's thread panicked");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::ndarray::NdArrayDevice;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::optim::GradientsParams;
    use burn::tensor::{Tensor, TensorData};
    use gamegen_core::optim::{InOrder, run_replicas};
    use std::sync::Mutex;

    type B = Autodiff<NdArray>;

    #[test]
    fn every_job_runs_once_and_the_first_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let ran = Mutex::new(Vec::new());
        let mut first_thread = None;
        let rest: Vec<Box<dyn FnOnce() + Send + '_>> = (1..4)
            .map(|i| {
                let ran = &ran;
                Box::new(move || ran.lock().unwrap().push(i)) as Box<dyn FnOnce() + Send + '_>
            })
            .collect();
        Threads.run(
            Box::new(|| first_thread = Some(std::thread::current().id())),
            rest,
        );
        assert_eq!(first_thread, Some(caller));
        let mut ran = ran.into_inner().unwrap();
        ran.sort();
        assert_eq!(ran, [1, 2, 3]);
    }

    /// The gradients of every share, as plain numbers in share order.
    fn share_gradients(runner: &impl ReplicaRunner, model: &Linear<B>) -> Vec<(Vec<f32>, f32)> {
        let devices = [NdArrayDevice::Cpu; 3];
        let shares: Vec<Vec<f32>> = (0..3)
            .map(|s| (0..6).map(|i| (s * 6 + i) as f32 * 0.1 - 0.7).collect())
            .collect();
        let work = |m: &Linear<B>, share: Vec<f32>, device: &NdArrayDevice| {
            let x = Tensor::<B, 2>::from_data(TensorData::new(share, [2, 3]), device);
            let loss = m.forward(x).powf_scalar(2.0).sum();
            let value = loss.clone().into_scalar();
            (GradientsParams::from_grads(loss.backward(), m), value)
        };
        run_replicas(runner, model, &devices, shares, work)
            .into_iter()
            .map(|(mut grads, loss)| {
                let w = grads
                    .remove::<NdArray, 2>(model.weight.id)
                    .expect("a weight gradient");
                (w.into_data().to_vec::<f32>().unwrap(), loss)
            })
            .collect()
    }

    #[test]
    fn threads_give_the_gradients_of_running_in_order() {
        // Weights given as values: a lazily initialised parameter would be drawn afresh by
        // every fork.
        let device = NdArrayDevice::Cpu;
        let weights: Vec<f32> = (0..6).map(|i| 0.3 - 0.11 * i as f32).collect();
        let model: Linear<B> = Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weights, [3, 2]),
                &device,
            )),
            bias: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.05f32, -0.2], [2]),
                &device,
            ))),
        };
        let threaded = share_gradients(&Threads, &model);
        assert_eq!(threaded.len(), 3);
        assert_eq!(threaded, share_gradients(&InOrder, &model));
        // The shares differ, so a mix-up of their order would show.
        assert_ne!(threaded[0], threaded[1]);
    }
}
