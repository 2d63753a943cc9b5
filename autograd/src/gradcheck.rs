//! Gradient checking: the tape's gradients against central finite differences, in f64.
//!
//! The function under test may return a tensor of any shape. The checker reduces it to a scalar
//! with fixed random weights, L = Σ w ⊙ f(x), so every output element takes part, then compares
//! ∂L/∂x from the tape with (L(x + ε eᵢ) − L(x − ε eᵢ)) / 2ε for every element of every input.

use crate::{Tape, Var};
use tensor::{DType, Device, Error, Result, Rng, Tensor};

/// How inputs are laid out in memory when handed to the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputLayout {
    /// Row-major.
    Contiguous,
    /// The same values behind non-unit strides (reversed dims permuted back, or a strided
    /// slice for 1-D inputs), to exercise the ops' strided paths.
    Strided,
}

/// Tolerances: an element passes when |analytic − numeric| ≤ atol + rtol · |numeric|.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    pub layout: InputLayout,
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            atol: 1e-7,
            rtol: 1e-5,
            layout: InputLayout::Contiguous,
            seed: 0,
        }
    }
}

/// The largest error seen, for reporting.
#[derive(Debug, Clone, Copy)]
pub struct GradCheckReport {
    pub max_abs_error: f64,
    pub checked_elements: usize,
}

impl GradCheck {
    pub fn strided(self) -> Self {
        GradCheck {
            layout: InputLayout::Strided,
            ..self
        }
    }

    /// Checks `f` at `inputs` (F64 tensors). Fails with the first element out of tolerance,
    /// naming the input, the element and both values.
    pub fn run(
        &self,
        inputs: &[Tensor],
        f: impl Fn(&[Var]) -> Result<Var>,
    ) -> Result<GradCheckReport> {
        let data: Vec<Vec<f64>> = inputs
            .iter()
            .map(|t| t.to_vec::<f64>())
            .collect::<Result<_>>()?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.dims().to_vec()).collect();
        let build = |data: &[Vec<f64>]| -> Result<Vec<Tensor>> {
            data.iter()
                .zip(&shapes)
                .map(|(d, s)| self.make_input(d, s))
                .collect()
        };

        // Fixed weights that project the output to a scalar.
        let probe = f(&build(&data)?
            .into_iter()
            .map(Var::constant)
            .collect::<Vec<_>>())?;
        let mut rng = Rng::seed(self.seed);
        let weights = Tensor::randn(
            probe.shape().clone(),
            0.0,
            1.0,
            DType::F64,
            Device::Cpu,
            &mut rng,
        )?;
        let loss_of = |vars: &[Var]| -> Result<Var> {
            f(vars)?.mul(&Var::constant(weights.clone()))?.sum_all()
        };

        // Analytic gradients from the tape.
        let tape = Tape::new();
        let vars: Vec<Var> = build(&data)?.into_iter().map(|t| tape.var(t)).collect();
        let grads = loss_of(&vars)?.backward()?;

        // Numeric gradients, one element at a time, compared as we go.
        let mut report = GradCheckReport {
            max_abs_error: 0.0,
            checked_elements: 0,
        };
        for (i, var) in vars.iter().enumerate() {
            let analytic = match grads.get(var) {
                Some(g) => g.to_dtype(DType::F64)?.to_vec::<f64>()?,
                None => vec![0.0; data[i].len()],
            };
            for j in 0..data[i].len() {
                let eval_at = |delta: f64| -> Result<f64> {
                    let mut d = data.clone();
                    d[i][j] += delta;
                    let vars: Vec<Var> = build(&d)?.into_iter().map(Var::constant).collect();
                    loss_of(&vars)?.value().to_scalar::<f64>()
                };
                let numeric = (eval_at(self.eps)? - eval_at(-self.eps)?) / (2.0 * self.eps);
                let err = (analytic[j] - numeric).abs();
                // Written so that a NaN on either side fails too.
                let within = err <= self.atol + self.rtol * numeric.abs();
                if !within {
                    return Err(Error::msg(
                        "gradcheck",
                        format!("input {i} {:?}, element {j}: tape {} vs finite difference {numeric} (|err| {err:e})", shapes[i], analytic[j]),
                    ));
                }
                report.max_abs_error = report.max_abs_error.max(err);
                report.checked_elements += 1;
            }
        }
        Ok(report)
    }

    /// A check for functions of many parameters (a whole model's loss): for each input, one
    /// random direction u supported on that input alone, comparing the tape's ⟨∂L/∂x, u⟩ with
    /// (L(x + εu) − L(x − εu)) / 2ε. Two evaluations per input instead of two per element;
    /// a wrong gradient anywhere in an input shows up in its direction with probability 1.
    /// `f` must return a scalar. Fails naming the first input that disagrees.
    pub fn run_directional(
        &self,
        inputs: &[Tensor],
        f: impl Fn(&[Var]) -> Result<Var>,
    ) -> Result<GradCheckReport> {
        let tape = Tape::new();
        let vars: Vec<Var> = inputs.iter().map(|t| tape.var(t.clone())).collect();
        let grads = f(&vars)?.backward()?;
        let mut rng = Rng::seed(self.seed);
        let mut report = GradCheckReport {
            max_abs_error: 0.0,
            checked_elements: 0,
        };
        for (i, var) in vars.iter().enumerate() {
            let u = Tensor::randn(
                inputs[i].shape().clone(),
                0.0,
                1.0,
                DType::F64,
                Device::Cpu,
                &mut rng,
            )?;
            let u =
                u.mul_scalar(1.0 / u.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt().max(1e-300))?; // unit length
            let analytic = match grads.get(var) {
                Some(g) => g
                    .to_dtype(DType::F64)?
                    .mul(&u)?
                    .sum_all()?
                    .to_scalar::<f64>()?,
                None => 0.0,
            };
            let eval_at = |delta: f64| -> Result<f64> {
                let moved = inputs[i].add(&u.mul_scalar(delta)?)?;
                let vars: Vec<Var> = (0..inputs.len())
                    .map(|j| {
                        Var::constant(if j == i {
                            moved.clone()
                        } else {
                            inputs[j].clone()
                        })
                    })
                    .collect();
                f(&vars)?.value().to_scalar::<f64>()
            };
            let numeric = (eval_at(self.eps)? - eval_at(-self.eps)?) / (2.0 * self.eps);
            let err = (analytic - numeric).abs();
            let within = err <= self.atol + self.rtol * numeric.abs();
            if !within {
                return Err(Error::msg(
                    "gradcheck",
                    format!("input {i} {:?}: directional derivative from the tape {analytic} vs finite difference {numeric}", inputs[i].dims()),
                ));
            }
            report.max_abs_error = report.max_abs_error.max(err);
            report.checked_elements += inputs[i].numel();
        }
        Ok(report)
    }

    /// An F64 tensor holding `data` with dims `dims`, laid out as `self.layout` asks.
    fn make_input(&self, data: &[f64], dims: &[usize]) -> Result<Tensor> {
        let t = Tensor::from_slice(data, dims.to_vec(), Device::Cpu)?;
        if self.layout == InputLayout::Contiguous || dims.is_empty() {
            return Ok(t);
        }
        if dims.len() == 1 {
            // Every other element of a [n, 2] buffer: stride 2.
            let wide = Tensor::cat(&[&t.unsqueeze(1)?, &t.unsqueeze(1)?.zeros_like()?], 1)?;
            return wide.narrow(1, 0, 1)?.squeeze(1);
        }
        // Store with the dims reversed, then permute back: same values, reversed strides.
        let rank = dims.len();
        let reversed: Vec<usize> = (0..rank).rev().collect();
        t.permute(&reversed)?.contiguous()?.permute(&reversed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Tensor {
        Tensor::from_vec(vec![0.3f64, -1.2, 0.7, 2.0, -0.1, 0.5], [2, 3], Device::Cpu).unwrap()
    }

    #[test]
    fn catches_a_wrong_backward_rule() {
        // y = x², recorded with the wrong derivative 3x.
        let wrong = |v: &[Var]| {
            let x = v[0].value().clone();
            let y = x.sqr()?;
            Var::record("bad_sqr", &[&v[0]], y, move |dy| {
                Ok(vec![Some(dy.mul(&x.mul_scalar(3.0)?)?)])
            })
        };
        let err = GradCheck::default().run(&[input()], wrong).unwrap_err();
        assert!(err.to_string().contains("tape"), "{err}");
        assert!(GradCheck::default().run(&[input()], |v| v[0].sqr()).is_ok());
    }

    #[test]
    fn strided_inputs_are_not_contiguous() {
        let cfg = GradCheck::default().strided();
        let m = cfg
            .make_input(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
            .unwrap();
        let v = cfg.make_input(&[1.0, 2.0, 3.0], &[3]).unwrap();
        assert!(!m.is_contiguous() && !v.is_contiguous());
        assert_eq!(
            m.to_vec::<f64>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(v.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0]);
    }
}
