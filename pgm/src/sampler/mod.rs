//! The samplers of SPEC §6: MDLM `ddpm` and `ddpm-cache`, PGM `naive`, `efficient-uniform` and
//! `efficient-non-uniform`, each with greedy or stochastic (optionally top-p) draws, a random or
//! left-to-right order, and prompts (given tokens at given positions start the clean set).
//!
//! Every sample is L = `config.seq_len` tokens with BOS at position 0. [`sample`] checks the
//! options against the model and runs the asked sampler; [`flops`] counts the work of one run.
//!
//! | sampler | model | what runs per step |
//! |---|---|---|
//! | `ddpm` | MDLM | the trunk over all L positions, every step |
//! | `ddpm-cache` | MDLM | the trunk only when a position is revealed and x changed since the last run |
//! | `naive` | PGM | the training forward over all L positions, masked ones as group 1 |
//! | `efficient-uniform` | PGM | encoder over the clean tokens, decoder over the next L/S queries |
//! | `efficient-non-uniform` | PGM | the same, with Binomial per-row counts (MDLM's schedule) |

pub mod draw;
pub mod flops;
pub mod folded;
pub mod masked;
pub mod pgm_efficient;
pub mod plan;

use crate::checkpoint::Model;
use crate::config::{ModelConfig, ModelKind};
use draw::DrawRule;
use nn::ParamStore;
use std::str::FromStr;
use tensor::{Error, Result, Rng};

/// Which sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// MDLM: the model runs every step.
    Ddpm,
    /// MDLM: the model runs only when its input changed and a position is drawn.
    DdpmCache,
    /// PGM over all L positions (masked positions as group 1): the check for the efficient ones.
    Naive,
    /// PGM, encoder over the clean set only, the same number of new tokens every step.
    EfficientUniform,
    /// PGM, encoder over the clean set only, Binomial numbers of new tokens per row and step.
    EfficientNonUniform,
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 5] = [
        SamplerKind::Ddpm,
        SamplerKind::DdpmCache,
        SamplerKind::Naive,
        SamplerKind::EfficientUniform,
        SamplerKind::EfficientNonUniform,
    ];
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::DdpmCache => "ddpm-cache",
            SamplerKind::Naive => "naive",
            SamplerKind::EfficientUniform => "efficient-uniform",
            SamplerKind::EfficientNonUniform => "efficient-non-uniform",
        }
    }
    /// The model kind the sampler runs on.
    pub fn model_kind(self) -> ModelKind {
        match self {
            SamplerKind::Ddpm | SamplerKind::DdpmCache => ModelKind::Mdlm,
            _ => ModelKind::Pgm,
        }
    }
}

impl FromStr for SamplerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
        SamplerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::msg(
                    "sampler",
                    format!("unknown sampler '{s}'; known: {}", names.join(", ")),
                )
            })
    }
}

/// In which order positions are generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// A random permutation per sequence (efficient samplers); each masked position revealed
    /// with the schedule's probability (`ddpm`, `ddpm-cache`, `naive`).
    Random,
    /// Left to right, the same number of positions per step for every sampler (as
    /// `efficient-uniform` sizes its steps); the deterministic variant for tests and infilling.
    LeftToRight,
}

/// Everything a sampling run needs besides the model.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleOptions {
    pub sampler: SamplerKind,
    /// Denoising steps S (at most L, and at most the number of positions to generate when the
    /// steps are sized evenly).
    pub steps: usize,
    pub draw: DrawRule,
    pub order: Order,
    /// Given tokens at given positions (1..L): they start the clean set and are never changed.
    pub prompt: Vec<(usize, u32)>,
    /// The token at position 0 of every sample.
    pub bos: u32,
}

impl SampleOptions {
    /// Stochastic draws without top-p, random order, no prompt.
    pub fn new(sampler: SamplerKind, steps: usize, bos: u32) -> Self {
        SampleOptions {
            sampler,
            steps,
            draw: DrawRule {
                greedy: false,
                top_p: 1.0,
            },
            order: Order::Random,
            prompt: Vec::new(),
            bos,
        }
    }

    /// Whether every step reveals a fixed number of positions (rather than a random one).
    pub fn evenly_sized(&self) -> bool {
        self.sampler == SamplerKind::EfficientUniform || self.order == Order::LeftToRight
    }

    /// Fails with a sentence when the options do not fit `cfg` (or each other).
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        let bad = |m: String| Err(Error::msg("sample", m));
        let (l, s) = (cfg.seq_len, self.steps);
        if self.sampler.model_kind() != cfg.model {
            return bad(format!(
                "the {} sampler needs a {:?} model, but this model is a {:?}",
                self.sampler.name(),
                self.sampler.model_kind(),
                cfg.model
            ));
        }
        if s == 0 || s > l {
            return bad(format!(
                "steps must be between 1 and the sequence length L = {l}, got {s}"
            ));
        }
        if !(self.draw.top_p > 0.0 && self.draw.top_p <= 1.0) {
            return bad(format!("top-p must be in (0, 1], got {}", self.draw.top_p));
        }
        if self.bos >= cfg.mask_id() {
            return bad(format!(
                "BOS id {} is not a token of the vocabulary",
                self.bos
            ));
        }
        let mut seen = vec![false; l];
        for &(pos, tok) in &self.prompt {
            if pos == 0 || pos >= l {
                return bad(format!(
                    "prompt position {pos} is outside 1..{l} (position 0 is BOS)"
                ));
            }
            if std::mem::replace(&mut seen[pos], true) {
                return bad(format!("prompt position {pos} is given twice"));
            }
            if tok >= cfg.mask_id() {
                return bad(format!(
                    "prompt token {tok} at position {pos} is MASK or outside the vocabulary"
                ));
            }
        }
        let targets = self.targets(l);
        if self.evenly_sized() && s > targets.max(1) {
            return bad(format!(
                "{s} steps for {targets} positions to generate: each step must reveal at least one (use at most {targets} steps)"
            ));
        }
        Ok(())
    }

    /// The number of positions to generate: L − 1 (BOS) minus the prompt.
    pub fn targets(&self, len: usize) -> usize {
        len - 1 - self.prompt.len()
    }

    /// Which positions are given (BOS and the prompt), `[L]`.
    pub fn given(&self, len: usize) -> Vec<bool> {
        let mut given = vec![false; len];
        given[0] = true;
        for &(p, _) in &self.prompt {
            given[p] = true;
        }
        given
    }

    /// A row with BOS and the prompt, `fill` elsewhere, `[L]`.
    pub fn start_row(&self, len: usize, fill: u32) -> Vec<u32> {
        let mut row = vec![fill; len];
        row[0] = self.bos;
        for &(p, t) in &self.prompt {
            row[p] = t;
        }
        row
    }
}

/// The result of a sampling run.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// B sequences of L tokens each.
    pub tokens: Vec<Vec<u32>>,
    /// How many times the network ran (each over the whole batch).
    pub model_calls: usize,
}

/// Generates `batch` sequences from `model` (weights in `store`) with `opts`. Records no tape.
/// Fails when the options do not fit the model (see [`SampleOptions::validate`]).
pub fn sample(
    model: &Model,
    store: &ParamStore,
    opts: &SampleOptions,
    batch: usize,
    rng: &mut Rng,
) -> Result<Samples> {
    opts.validate(model.config())?;
    if batch == 0 {
        return Err(Error::msg("sample", "the batch size must be at least 1"));
    }
    let p = store.bind(None);
    match (model, opts.sampler) {
        (Model::Mdlm(net), SamplerKind::Ddpm | SamplerKind::DdpmCache) => {
            let folded = folded::FoldedMdlm::new(net, &p)?;
            masked::sample_mdlm(&folded, opts, batch, rng)
        }
        (Model::Pgm(net), SamplerKind::Naive) => masked::sample_naive(net, &p, opts, batch, rng),
        (Model::Pgm(net), _) => {
            let folded = folded::FoldedPgm::new(net, &p)?;
            pgm_efficient::sample_efficient(&folded, opts, batch, rng)
        }
        _ => unreachable!("validate checked the model kind"),
    }
}
