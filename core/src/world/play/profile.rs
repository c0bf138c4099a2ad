//! Where a frame's time goes: a profiler that attributes time to the stages of a step.

/// The parts of a frame that [`WorldSession::step_profiled`](super::WorldSession::step_profiled) times separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// LogicNet on `(z_{t-1}, a)` and the read of its event probabilities.
    Logic,
    /// The local map crop on the host and its upload.
    MapCrop,
    /// The map CNN on the crop.
    MapCnn,
    /// Per-frame conditioning: action embedding, digit and map tokens, adaLN inputs.
    Condition,
    /// The frame's Gaussian noise (host PRNG and upload).
    Noise,
    /// The DiT cell, all `S + 1` passes.
    Dit,
    /// The v head, all `S + 1` passes.
    Head,
    /// DDIM update arithmetic.
    Ddim,
    /// VAE decode of the clean latent.
    Decode,
    /// Reading the frame back and converting it to RGB8.
    Readback,
    /// Linking the frame into the spatial map.
    Link,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Logic,
        Stage::MapCrop,
        Stage::MapCnn,
        Stage::Condition,
        Stage::Noise,
        Stage::Dit,
        Stage::Head,
        Stage::Ddim,
        Stage::Decode,
        Stage::Readback,
        Stage::Link,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Logic => "logicnet + event read",
            Stage::MapCrop => "map crop (host) + upload",
            Stage::MapCnn => "map CNN",
            Stage::Condition => "conditioning (tokens, adaLN)",
            Stage::Noise => "noise (host) + upload",
            Stage::Dit => "DiT cell (S+1 passes)",
            Stage::Head => "v head (S+1 passes)",
            Stage::Ddim => "DDIM arithmetic",
            Stage::Decode => "decode (play decoder or VAE)",
            Stage::Readback => "frame read + RGB8",
            Stage::Link => "linking (spatial map)",
        }
    }
}

/// Seconds spent per [`Stage`], summed over the frames profiled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Breakdown {
    pub seconds: [f64; Stage::ALL.len()],
    pub frames: u64,
}

impl Breakdown {
    pub fn get(&self, stage: Stage) -> f64 {
        self.seconds[stage as usize]
    }

    pub fn total(&self) -> f64 {
        self.seconds.iter().sum()
    }
}

/// Attributes the time since the previous mark to a stage. The clock is the caller's (core has
/// no clock that works in wasm); timings are only meaningful on backends that run each
/// operation when it is called (the CPU backends), not on queued GPU backends.
pub struct Profiler<'a> {
    clock: &'a mut dyn FnMut() -> f64,
    last: f64,
    pub breakdown: Breakdown,
}

impl<'a> Profiler<'a> {
    pub fn new(clock: &'a mut dyn FnMut() -> f64) -> Self {
        let last = clock();
        Self {
            clock,
            last,
            breakdown: Breakdown::default(),
        }
    }

    pub(crate) fn mark(&mut self, stage: Stage) {
        let now = (self.clock)();
        self.breakdown.seconds[stage as usize] += now - self.last;
        self.last = now;
    }

    /// Restart the interval (time since the last mark is not attributed).
    pub(crate) fn restart(&mut self) {
        self.last = (self.clock)();
    }
}

pub(crate) fn mark(p: &mut Option<&mut Profiler<'_>>, stage: Stage) {
    if let Some(p) = p {
        p.mark(stage);
    }
}
