//! The training objectives (SPEC §5): the PGM partition loss and the MDLM loss, each with the
//! random draws it needs (antithetic times, the partition or the mask).

use crate::mdlm_net::MdlmNetwork;
use crate::pgm_net::PgmNetwork;
use crate::schedule::{alpha, antithetic_times, weight};
use autograd::Var;
use nn::Bound;
use tensor::{Device, Error, Result, Rng, Tensor};

/// Which form of a loss to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossForm {
    /// The objective that is minimised.
    Train,
    /// The bound reported as validation loss and perplexity.
    Validation,
}

/// Clean tokens with a time per row and, per token, a draw of "noised" (group 1 / MASK) with
/// probability 1 − alpha(t).
pub struct NoisedBatch {
    /// x0 [B, L] (U32).
    pub tokens: Tensor,
    /// 1 where the token is noised (PGM: group 1; MDLM: replaced by MASK), [B, L] (U8).
    pub noised: Tensor,
    /// One time per row.
    pub times: Vec<f64>,
}

impl NoisedBatch {
    /// Draws antithetic times for the rows of `tokens` [B, L] and the noised set.
    pub fn sample(tokens: &Tensor, rng: &mut Rng) -> Result<Self> {
        let (b, l) = (tokens.dims()[0], tokens.dims()[1]);
        let times = antithetic_times(b, rng);
        let noised: Vec<u8> = (0..b * l)
            .map(|i| (rng.uniform() < 1.0 - alpha(times[i / l])) as u8)
            .collect();
        Ok(NoisedBatch {
            tokens: tokens.clone(),
            noised: Tensor::from_vec(noised, [b, l], Device::Cpu)?,
            times,
        })
    }
}

/// Σ weight · (−log p(x0)) / (B·L) from the logits [B, L, V], with the MASK class left out of
/// the softmax and per-token weights [B, L]; fails on a non-finite value. The log-softmax and
/// the pick of x0 are one fused op, so no [B, L, V] log-probabilities are built.
fn weighted_nll(
    logits: &Var,
    tokens: &Tensor,
    weights: Vec<f64>,
    mask_id: u32,
    what: &'static str,
) -> Result<Var> {
    let (b, l) = (tokens.dims()[0], tokens.dims()[1]);
    let device = logits.value().device();
    let nll = logits.cross_entropy(&tokens.to_device(device)?, Some(mask_id))?; // [B, L]
    let w = Tensor::from_vec(weights, [b, l], Device::Cpu)?
        .to_dtype(nll.value().dtype())?
        .to_device(device)?;
    let loss = nll
        .mul(&Var::constant(w))?
        .sum_all()?
        .mul_scalar(1.0 / (b * l) as f64)?;
    let value = loss
        .value()
        .to_dtype(tensor::DType::F64)?
        .to_scalar::<f64>()?;
    if !value.is_finite() {
        return Err(Error::msg(what, format!("the loss is {value}: a non-finite value reached it (times or weights too extreme, or a diverged model)")));
    }
    Ok(loss)
}

fn reject_mask_tokens(tokens: &Tensor, mask_id: u32, what: &'static str) -> Result<()> {
    if tokens.to_vec::<u32>()?.contains(&mask_id) {
        return Err(Error::msg(
            what,
            format!("the clean data contains the MASK id {mask_id}"),
        ));
    }
    Ok(())
}

/// The PGM loss. One forward pass on the clean tokens with the partition `noised` (group 1).
/// Train: group-1 tokens weigh w(t), group-0 tokens w(1 − t), mean over B·L tokens, halved.
/// Validation: group-1 tokens only, weight w(t), sum / (B·L).
pub fn pgm_loss(
    net: &PgmNetwork,
    p: &Bound,
    batch: &NoisedBatch,
    form: LossForm,
    rng: Option<&mut Rng>,
) -> Result<Var> {
    reject_mask_tokens(&batch.tokens, net.config.mask_id(), "pgm loss")?;
    let logits = net.train_logits(p, &batch.tokens, &batch.noised, rng)?;
    let l = batch.tokens.dims()[1];
    let weights = batch
        .noised
        .to_vec::<u8>()?
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let t = batch.times[i / l];
            match (form, g) {
                (LossForm::Train, 1) => weight(t) / 2.0,
                (LossForm::Train, _) => weight(1.0 - t) / 2.0,
                (LossForm::Validation, 1) => weight(t),
                (LossForm::Validation, _) => 0.0,
            }
        })
        .collect();
    let mask_id = net.config.mask_id();
    weighted_nll(&logits, &batch.tokens, weights, mask_id, "pgm loss")
}

/// The MDLM loss: masked tokens weigh w(t) = 1/t, the sum is divided by B·L. Training and
/// validation use the same bound (validation runs without dropout).
pub fn mdlm_loss(
    net: &MdlmNetwork,
    p: &Bound,
    batch: &NoisedBatch,
    rng: Option<&mut Rng>,
) -> Result<Var> {
    let mask_id = net.config.mask_id();
    reject_mask_tokens(&batch.tokens, mask_id, "mdlm loss")?;
    let l = batch.tokens.dims()[1];
    let (x0, noised) = (batch.tokens.to_vec::<u32>()?, batch.noised.to_vec::<u8>()?);
    let x_t: Vec<u32> = x0
        .iter()
        .zip(&noised)
        .map(|(&x, &m)| if m == 1 { mask_id } else { x })
        .collect();
    let x_t = Tensor::from_vec(x_t, batch.tokens.dims().to_vec(), Device::Cpu)?;
    let logits = net.logits(p, &x_t, rng)?;
    let weights = noised
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            if m == 1 {
                weight(batch.times[i / l])
            } else {
                0.0
            }
        })
        .collect();
    weighted_nll(&logits, &batch.tokens, weights, mask_id, "mdlm loss")
}
