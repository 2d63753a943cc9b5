//! The training loop's state and one optimisation step: the loss of either model on a batch
//! of clean windows, gradient accumulation, clipping, AdamW, the EMA of the weights, periodic
//! evaluation with the EMA weights, and checkpoints that resume exactly.

use crate::checkpoint::{self, Model};
use crate::loss::{mdlm_loss, pgm_loss, LossForm, NoisedBatch};
use autograd::{Tape, Var};
use nn::optim::{clip_grad_norm, AdamW, AdamWConfig, Ema, LrSchedule};
use nn::{Bound, ParamStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::{DType, Device, Error, Result, Rng, Tensor};

/// Optimisation settings (saved in checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub lr: f64,
    pub warmup: u64,
    /// Cosine decay to `min_lr_ratio · lr` at `total_steps`; otherwise constant after warm-up.
    pub cosine: bool,
    pub min_lr_ratio: f64,
    pub total_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub grad_clip: f64,
    pub ema_decay: f64,
    pub seed: u64,
}

impl TrainConfig {
    fn schedule(&self) -> LrSchedule {
        LrSchedule {
            lr: self.lr,
            warmup: self.warmup,
            cosine_total: self.cosine.then_some(self.total_steps),
            min_ratio: self.min_lr_ratio,
        }
    }
}

/// What one step reports.
#[derive(Clone, Copy, Debug)]
pub struct StepStats {
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
}

/// Everything that changes during training.
pub struct Trainer {
    pub model: Model,
    pub params: ParamStore,
    pub config: TrainConfig,
    optimizer: AdamW,
    ema: Ema,
    noise_rng: Rng,
    dropout_rng: Rng,
    step: u64,
    /// The dtype of the forward and backward passes (the weights, moments and loss stay in
    /// the store's dtype): see [`Trainer::set_compute_dtype`].
    compute: DType,
}

/// The loss of either model on clean tokens [B, L], drawing times and the partition or mask.
pub fn model_loss(
    model: &Model,
    p: &Bound,
    tokens: &Tensor,
    form: LossForm,
    noise: &mut Rng,
    dropout: Option<&mut Rng>,
) -> Result<Var> {
    let batch = NoisedBatch::sample(tokens, noise)?;
    match model {
        Model::Pgm(net) => pgm_loss(net, p, &batch, form, dropout),
        Model::Mdlm(net) => mdlm_loss(net, p, &batch, dropout),
    }
}

impl Trainer {
    pub fn new(model: Model, params: ParamStore, config: TrainConfig) -> Self {
        let opt = AdamW::new(AdamWConfig {
            lr: config.lr,
            beta1: config.beta1,
            beta2: config.beta2,
            eps: 1e-8,
            weight_decay: config.weight_decay,
        });
        Trainer {
            ema: Ema::new(&params, config.ema_decay),
            noise_rng: Rng::seed(config.seed ^ 0x6E_6F69_7365),
            dropout_rng: Rng::seed(config.seed ^ 0x6472_6F70),
            optimizer: opt,
            compute: params.dtype(),
            model,
            params,
            config,
            step: 0,
        }
    }

    /// Mixed precision: run the forward and backward passes in `dtype` (bf16 on a GPU) over
    /// master weights kept in the store's dtype, which the optimizer updates. The loss is
    /// computed in f32 whatever the compute dtype.
    pub fn set_compute_dtype(&mut self, dtype: DType) {
        self.compute = dtype;
    }
    /// Optimiser steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }
    /// The averaged weights (for evaluation, sampling and the checkpoint's model file).
    pub fn ema_weights(&self) -> &ParamStore {
        &self.ema.weights
    }

    /// One optimiser step over the micro-batches (gradient accumulation: their gradients are
    /// averaged). Fails with a clear error on a non-finite loss or gradient.
    pub fn step(&mut self, micro_batches: &[Tensor]) -> Result<StepStats> {
        let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut loss_sum = 0.0;
        let k = micro_batches.len() as f64;
        for tokens in micro_batches {
            let tape = Tape::new();
            let p = self.params.bind_as(Some(&tape), self.compute)?;
            let dropout = Some(&mut self.dropout_rng);
            let loss = model_loss(
                &self.model,
                &p,
                tokens,
                LossForm::Train,
                &mut self.noise_rng,
                dropout,
            )?;
            loss_sum += loss.value().to_dtype(DType::F64)?.to_scalar::<f64>()?;
            for (name, g) in p.gradients(&loss.backward()?) {
                let g = g.mul_scalar(1.0 / k)?;
                let total = match grads.remove(&name) {
                    Some(acc) => acc.add(&g)?,
                    None => g,
                };
                grads.insert(name, total);
            }
        }
        let grad_norm = clip_grad_norm(&mut grads, self.config.grad_clip)?;
        if !grad_norm.is_finite() {
            return Err(Error::msg("train", format!("the gradient norm is {grad_norm} at step {}: training diverged (try a lower --lr)", self.step + 1)));
        }
        let lr = self.config.schedule().at(self.step);
        self.optimizer.step(&mut self.params, &grads, lr)?;
        self.ema.update(&self.params)?;
        self.step += 1;
        Ok(StepStats {
            loss: loss_sum / k,
            grad_norm,
            lr,
        })
    }

    /// The mean validation loss over `batches` with the EMA weights, no dropout, and noise
    /// drawn from `seed` (the same draws at every evaluation, so evaluations compare).
    pub fn evaluate(&self, batches: &[Tensor], seed: u64) -> Result<f64> {
        let p = self.ema.weights.bind_as(None, self.compute)?;
        let mut noise = Rng::seed(seed);
        let mut total = 0.0;
        for tokens in batches {
            let loss = model_loss(
                &self.model,
                &p,
                tokens,
                LossForm::Validation,
                &mut noise,
                None,
            )?;
            total += loss.value().to_dtype(DType::F64)?.to_scalar::<f64>()?;
        }
        Ok(total / batches.len().max(1) as f64)
    }

    /// Writes a checkpoint directory atomically (built beside it, then swapped in):
    /// `config.json` + `model.safetensors` (EMA weights, loadable by `checkpoint::load`),
    /// `train_state.safetensors` (raw weights and optimiser moments) and `train_state.json`
    /// (step, RNG states, the train config and the caller's `extra`, e.g. the data order).
    pub fn save(&self, dir: &Path, extra: serde_json::Value) -> Result<()> {
        let io =
            |p: &Path, e: std::io::Error| Error::msg("checkpoint", format!("{}: {e}", p.display()));
        let tmp = dir.with_extension("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        checkpoint::save(&tmp, self.model.config(), &self.ema.weights)?;
        let (opt_step, moments) = self.optimizer.state();
        let raw = self
            .params
            .iter()
            .map(|(n, t)| (format!("param.{n}"), t.clone()));
        let state: Vec<(String, Tensor)> = raw.chain(moments).collect();
        nn::checkpoint::save(
            &tmp.join("train_state.safetensors"),
            state.iter().map(|(n, t)| (n.as_str(), t)),
            None,
        )?;
        let json = serde_json::json!({
            "step": self.step,
            "optimizer_step": opt_step,
            "ema_updates": self.ema.updates,
            "noise_rng": self.noise_rng.state(),
            "dropout_rng": self.dropout_rng.state(),
            "train_config": self.config,
            "extra": extra,
        });
        std::fs::write(
            tmp.join("train_state.json"),
            serde_json::to_string_pretty(&json).expect("json"),
        )
        .map_err(|e| io(&tmp, e))?;
        let old = dir.with_extension("old");
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        Ok(())
    }

    /// Restores a trainer from a checkpoint directory written by `save`, with the caller's
    /// `extra` value, its weights and optimizer state on `device`.
    pub fn resume(dir: &Path, device: Device) -> Result<(Trainer, serde_json::Value)> {
        let bad = |m: String| Error::msg("resume", format!("{}: {m}", dir.display()));
        let (model, ema_weights) = checkpoint::load(dir, None, DType::F32, device)?;
        let text = std::fs::read_to_string(dir.join("train_state.json"))
            .map_err(|e| bad(format!("train_state.json: {e}")))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("train_state.json: {e}")))?;
        let field = |k: &str| {
            json.get(k)
                .cloned()
                .ok_or_else(|| bad(format!("train_state.json has no '{k}'")))
        };
        let parse = |k: &str| -> Result<u64> {
            field(k)?
                .as_u64()
                .ok_or_else(|| bad(format!("'{k}' is not a count")))
        };
        let rng = |k: &str| -> Result<Rng> {
            let s: [u64; 4] =
                serde_json::from_value(field(k)?).map_err(|e| bad(format!("'{k}': {e}")))?;
            Ok(Rng::from_state(s))
        };
        let config: TrainConfig = serde_json::from_value(field("train_config")?)
            .map_err(|e| bad(format!("train_config: {e}")))?;
        let (state, _) = nn::checkpoint::load(&dir.join("train_state.safetensors"))?;
        let mut params = ema_weights.clone();
        let mut moments = Vec::new();
        for (name, t) in state {
            let t = t.to_device(device)?;
            match name.strip_prefix("param.") {
                Some(p) => params.set(p, t)?,
                None => moments.push((name, t)),
            }
        }
        let mut trainer = Trainer::new(model, params, config);
        trainer
            .optimizer
            .load_state(parse("optimizer_step")?, moments)?;
        trainer.ema = Ema {
            decay: trainer.config.ema_decay,
            updates: parse("ema_updates")?,
            weights: ema_weights,
        };
        trainer.noise_rng = rng("noise_rng")?;
        trainer.dropout_rng = rng("dropout_rng")?;
        trainer.step = parse("step")?;
        Ok((trainer, field("extra")?))
    }
}
