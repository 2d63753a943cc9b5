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

impl AdamW {
    /// The moments by parameter name, prefixed `m.` and `v.`, and the step count: what a
    /// checkpoint needs to resume exactly.
    pub fn state(&self) -> (u64, Vec<(String, Tensor)>) {
        let moments = self.m.iter().map(|(n, t)| (format!("m.{n}"), t.clone()));
        let moments = moments.chain(self.v.iter().map(|(n, t)| (format!("v.{n}"), t.clone())));
        (self.step, moments.collect())
    }
    /// Restores what `state` returned.
    pub fn load_state(&mut self, step: u64, moments: Vec<(String, Tensor)>) -> Result<()> {
        self.step = step;
        self.m.clear();
        self.v.clear();
        for (name, t) in moments {
            match name.split_once('.') {
                Some(("m", n)) => self.m.insert(n.to_string(), t),
                Some(("v", n)) => self.v.insert(n.to_string(), t),
                _ => {
                    return Err(Error::msg(
                        "AdamW",
                        format!("unexpected optimizer state entry '{name}'"),
                    ))
                }
            };
        }
        Ok(())
    }
}

/// The global L2 norm of all gradients; when above `max_norm`, every gradient is scaled so the
/// norm becomes `max_norm`. Returns the norm before clipping (NaN or inf is returned as is,
/// without scaling, for the caller to report).
pub fn clip_grad_norm(grads: &mut BTreeMap<String, Tensor>, max_norm: f64) -> Result<f64> {
    // Each gradient's Σ g² stays where the gradients are; one copy to the host reads them all.
    let sums = grads
        .values()
        .map(|g| g.sqr()?.sum_all()?.reshape([1]))
        .collect::<Result<Vec<_>>>()?;
    let total: f64 = if sums.is_empty() {
        0.0
    } else {
        let all = Tensor::cat(&sums.iter().collect::<Vec<_>>(), 0)?;
        all.to_f64_vec()?.iter().sum()
    };
    let norm = total.sqrt();
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = g.mul_scalar(scale)?;
        }
    }
    Ok(norm)
}

/// Learning rate: linear warm-up from 0, then constant or a cosine decay to `min_ratio · lr`.
#[derive(Clone, Copy, Debug)]
pub struct LrSchedule {
    pub lr: f64,
    pub warmup: u64,
    /// Some(total steps) for cosine decay over the steps after warm-up; None for constant.
    pub cosine_total: Option<u64>,
    pub min_ratio: f64,
}

impl LrSchedule {
    /// The rate for 0-based step `step`.
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        match self.cosine_total {
            Some(total) if total > self.warmup => {
                let progress =
                    ((step - self.warmup) as f64 / (total - self.warmup) as f64).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.lr * (self.min_ratio + (1.0 - self.min_ratio) * cosine)
            }
            _ => self.lr,
        }
    }
}

/// An exponential moving average of the weights, used for evaluation and sampling. The decay
/// ramps up as min(decay, (1 + n)/(10 + n)) over the first updates, so early averages are not
/// dominated by the initialisation.
pub struct Ema {
    pub decay: f64,
    pub updates: u64,
    pub weights: ParamStore,
}

impl Ema {
    pub fn new(store: &ParamStore, decay: f64) -> Self {
        Ema {
            decay,
            updates: 0,
            weights: store.clone(),
        }
    }
    /// ema ← d·ema + (1 − d)·θ for every parameter.
    pub fn update(&mut self, store: &ParamStore) -> Result<()> {
        self.updates += 1;
        let n = self.updates as f64;
        let d = self.decay.min((1.0 + n) / (10.0 + n));
        for (name, theta) in store.iter() {
            let old = self
                .weights
                .get(name)
                .cloned()
                .ok_or_else(|| Error::msg("Ema", format!("no average for '{name}'")))?;
            self.weights
                .set(name, old.mul_scalar(d)?.add(&theta.mul_scalar(1.0 - d)?)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Init;
    use tensor::{DType, Device, Rng};

    #[test]
    fn adamw_first_step_moves_each_weight_by_lr() {
        // With bias correction, step 1 is θ − lr·(g/(|g| + ε) + λθ).
        let mut store = ParamStore::new(DType::F64, Device::Cpu);
        store.add("w", [3], Init::Ones, &mut Rng::seed(0)).unwrap();
        let g = Tensor::from_vec(vec![0.5f64, -2.0, 0.0], [3], Device::Cpu).unwrap();
        let grads = BTreeMap::from([("w".to_string(), g)]);
        let mut opt = AdamW::new(AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        });
        opt.step(&mut store, &grads, 0.01).unwrap();
        let w = store.get("w").unwrap().to_vec::<f64>().unwrap();
        let want = [
            1.0 - 0.01 * (1.0 + 0.1),
            1.0 - 0.01 * (-1.0 + 0.1),
            1.0 - 0.01 * 0.1,
        ];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        let (step, state) = opt.state();
        let mut again = AdamW::new(opt.config);
        again.load_state(step, state).unwrap();
        assert_eq!(again.steps(), 1);
    }

    #[test]
    fn clipping_schedule_and_ema() {
        let t = |v: Vec<f64>| Tensor::from_vec(v, [2], Device::Cpu).unwrap();
        let mut grads = BTreeMap::from([
            ("a".to_string(), t(vec![3.0, 0.0])),
            ("b".to_string(), t(vec![0.0, 4.0])),
        ]);
        assert!((clip_grad_norm(&mut grads, 1.0).unwrap() - 5.0).abs() < 1e-12);
        assert!((clip_grad_norm(&mut grads, 1.0).unwrap() - 1.0).abs() < 1e-6);
        let s = LrSchedule {
            lr: 1.0,
            warmup: 10,
            cosine_total: Some(110),
            min_ratio: 0.1,
        };
        assert!((s.at(0) - 0.1).abs() < 1e-12 && (s.at(9) - 1.0).abs() < 1e-12);
        assert!((s.at(60) - 0.55).abs() < 1e-12 && (s.at(500) - 0.1).abs() < 1e-12);
        let mut store = ParamStore::new(DType::F64, Device::Cpu);
        store.add("w", [1], Init::Zeros, &mut Rng::seed(0)).unwrap();
        let mut ema = Ema::new(&store, 0.5);
        store
            .set(
                "w",
                t(vec![1.0, 0.0])
                    .narrow(0, 0, 1)
                    .unwrap()
                    .contiguous()
                    .unwrap(),
            )
            .unwrap();
        ema.update(&store).unwrap(); // d = min(0.5, 2/11)
        let w = ema.weights.get("w").unwrap().to_vec::<f64>().unwrap()[0];
        assert!((w - 9.0 / 11.0).abs() < 1e-12);
    }
}
