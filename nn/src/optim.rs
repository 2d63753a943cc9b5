//! AdamW (decoupled weight decay): the optimizer of the trainer, over a [`ParamStore`].

use crate::params::ParamStore;
use std::collections::BTreeMap;
use tensor::{Error, Result, Tensor};

/// AdamW's hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 3e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// AdamW with its first and second moments per parameter.
pub struct AdamW {
    pub config: AdamWConfig,
    step: u64,
    m: BTreeMap<String, Tensor>,
    v: BTreeMap<String, Tensor>,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            step: 0,
            m: BTreeMap::new(),
            v: BTreeMap::new(),
        }
    }
    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update at learning rate `lr` (the schedule's current value):
    /// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − lr·(m̂/(√v̂ + ε) + λθ).
    /// Parameters without a gradient are left alone (their moments too).
    pub fn step(
        &mut self,
        store: &mut ParamStore,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
    ) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let (bias1, bias2) = (
            1.0 - c.beta1.powi(self.step as i32),
            1.0 - c.beta2.powi(self.step as i32),
        );
        for (name, g) in grads {
            let Some(theta) = store.get(name).cloned() else {
                return Err(Error::msg(
                    "AdamW",
                    format!("gradient for unknown parameter '{name}'"),
                ));
            };
            let m = match self.m.get(name) {
                Some(m) => m.mul_scalar(c.beta1)?.add(&g.mul_scalar(1.0 - c.beta1)?)?,
                None => g.mul_scalar(1.0 - c.beta1)?,
            };
            let v = match self.v.get(name) {
                Some(v) => v
                    .mul_scalar(c.beta2)?
                    .add(&g.sqr()?.mul_scalar(1.0 - c.beta2)?)?,
                None => g.sqr()?.mul_scalar(1.0 - c.beta2)?,
            };
            let denom = v.mul_scalar(1.0 / bias2)?.sqrt()?.add_scalar(c.eps)?;
            let update = m
                .mul_scalar(1.0 / bias1)?
                .div(&denom)?
                .add(&theta.mul_scalar(c.weight_decay)?)?;
            store.set(name, theta.sub(&update.mul_scalar(lr)?)?)?;
            self.m.insert(name.clone(), m);
            self.v.insert(name.clone(), v);
        }
        Ok(())
    }
}
