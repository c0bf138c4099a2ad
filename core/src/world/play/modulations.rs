//! The adaLN modulations of a session, per (noise level, action), in the form its play path
//! takes.
//!
//! A modulation depends only on the weights, the noise level and the action, and a DDIM plan
//! reuses the same few levels every frame, so each is computed once and kept.

use burn::tensor::backend::Backend;
use gamegen_kernels::nets::DitModulation;

use super::cell_host;
use crate::world::model::dit::{DitCell, DitCond, FusedModulation, Modulation};

/// Most (noise level, action) modulations a session keeps (each holds gated copies of two
/// layers per block: about 0.3 MB at `tiny` sizes); beyond that the oldest are dropped.
const MAX_MODULATIONS: usize = 64;

/// One modulation in the form of a play path.
enum Prepared<B: Backend> {
    /// As training computes it (the reference path).
    Plain(Modulation<B>),
    /// Gates folded into the output layers, norms as vectors (the Burn fused path).
    Fused(FusedModulation<B>),
    /// The fused form on host buffers (the CPU kernels).
    Host(DitModulation),
}

/// Which form [`Modulations::get`] prepares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Plain,
    Fused,
    Host,
}

#[derive(Default)]
pub(crate) struct Modulations<B: Backend> {
    entries: Vec<(usize, u32, Prepared<B>)>,
}

impl<B: Backend> Modulations<B> {
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// The modulation of (`level`, `action`) in `form`, made from `cond` (whose action it is)
    /// the first time.
    fn get(
        &mut self,
        dit: &DitCell<B>,
        cond: &DitCond<B>,
        level: usize,
        action: u32,
        form: Form,
    ) -> &Prepared<B> {
        let found = self
            .entries
            .iter()
            .position(|(l, a, p)| *l == level && *a == action && form_of(p) == form);
        let at = match found {
            Some(i) => i,
            None => {
                if self.entries.len() >= MAX_MODULATIONS {
                    self.entries.remove(0);
                }
                let plain = dit.modulation(&[level as f32], cond);
                let prepared = match form {
                    Form::Plain => Prepared::Plain(plain),
                    Form::Fused => Prepared::Fused(fuse(dit, &plain)),
                    Form::Host => Prepared::Host(cell_host::modulation(&fuse(dit, &plain))),
                };
                self.entries.push((level, action, prepared));
                self.entries.len() - 1
            }
        };
        &self.entries[at].2
    }

    /// [`Self::get`] in the reference form.
    pub(crate) fn plain(
        &mut self,
        dit: &DitCell<B>,
        cond: &DitCond<B>,
        level: usize,
        action: u32,
    ) -> &Modulation<B> {
        match self.get(dit, cond, level, action, Form::Plain) {
            Prepared::Plain(m) => m,
            _ => unreachable!("get returns the form it was asked for"),
        }
    }

    /// [`Self::get`] in the Burn fused form.
    pub(crate) fn fused(
        &mut self,
        dit: &DitCell<B>,
        cond: &DitCond<B>,
        level: usize,
        action: u32,
    ) -> &FusedModulation<B> {
        match self.get(dit, cond, level, action, Form::Fused) {
            Prepared::Fused(m) => m,
            _ => unreachable!("get returns the form it was asked for"),
        }
    }

    /// [`Self::get`] on host buffers.
    pub(crate) fn host(
        &mut self,
        dit: &DitCell<B>,
        cond: &DitCond<B>,
        level: usize,
        action: u32,
    ) -> &DitModulation {
        match self.get(dit, cond, level, action, Form::Host) {
            Prepared::Host(m) => m,
            _ => unreachable!("get returns the form it was asked for"),
        }
    }
}

fn form_of<B: Backend>(p: &Prepared<B>) -> Form {
    match p {
        Prepared::Plain(_) => Form::Plain,
        Prepared::Fused(_) => Form::Fused,
        Prepared::Host(_) => Form::Host,
    }
}

fn fuse<B: Backend>(dit: &DitCell<B>, plain: &Modulation<B>) -> FusedModulation<B> {
    dit.fuse(plain)
        .expect("a play session's modulation is of one sample")
}
