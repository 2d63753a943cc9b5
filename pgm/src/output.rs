//! Output post-processing shared by PGM and MDLM, and input checks.

use autograd::Var;
use tensor::op::CmpOp;
use tensor::{DType, Device, Error, Result, Tensor};

/// Fails, naming the row and position, if any token id is not below `vocab_size`.
pub fn check_tokens(tokens: &Tensor, vocab_size: usize) -> Result<()> {
    let ids = tokens.to_vec::<u32>().map_err(|_| {
        Error::dtype(
            "model input",
            format!("token ids must be U32, got {:?}", tokens.dtype()),
        )
    })?;
    let width = *tokens.dims().last().unwrap_or(&1);
    match ids.iter().position(|&t| t as usize >= vocab_size) {
        Some(i) => Err(Error::msg(
            "model input",
            format!(
                "token id {} at row {}, position {} is outside the vocabulary of {vocab_size} ids",
                ids[i],
                i / width.max(1),
                i % width.max(1)
            ),
        )),
        None => Ok(()),
    }
}

/// logits [B, N, V] → log-probabilities with the MASK id at −∞ (the model never predicts MASK).
pub fn log_probs_without_mask(logits: &Var, mask_id: u32) -> Result<Var> {
    let v = *logits.dims().last().unwrap_or(&0);
    let mut is_mask = vec![0u8; v];
    is_mask[mask_id as usize] = 1;
    let is_mask = Tensor::from_vec(is_mask, [v], Device::Cpu)?;
    logits
        .masked_fill(&is_mask, f64::NEG_INFINITY)?
        .log_softmax()
}

/// MDLM's carry-over: where the input x_t [B, L] is not MASK, the output puts all its mass on
/// the input token (log-prob 0 there, −∞ elsewhere); masked positions keep `log_probs`.
pub fn carry_over_unmasked(log_probs: &Var, x_t: &Tensor, mask_id: u32) -> Result<Var> {
    let dims = log_probs.dims().to_vec();
    let v = dims[2];
    let ids = x_t.to_vec::<u32>()?;
    let mut one_hot_log = vec![f64::NEG_INFINITY; ids.len() * v];
    for (i, &t) in ids.iter().enumerate() {
        one_hot_log[i * v + t as usize] = 0.0;
    }
    let dtype = log_probs.value().dtype();
    let fixed = Tensor::from_vec(one_hot_log, dims, Device::Cpu)?.to_dtype(dtype)?;
    let mask = Tensor::full(mask_id as f64, (), DType::U32, Device::Cpu)?;
    let unmasked = x_t.cmp(&mask, CmpOp::Ne)?.unsqueeze(2)?; // [B, L, 1]
    Var::where_cond(&unmasked, &Var::constant(fixed), log_probs)
}
