//! Output post-processing shared by PGM and MDLM, and input checks.

use autograd::Var;
use tensor::op::CmpOp;
use tensor::{DType, Error, Result, Tensor};

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

/// Half-precision logits (bf16, f16) widened to f32, others as they are: log-probabilities
/// and losses are always computed in f32 or f64.
pub fn widened(logits: &Var) -> Result<Var> {
    match logits.value().dtype() {
        DType::BF16 | DType::F16 => logits.to_dtype(DType::F32),
        _ => Ok(logits.clone()),
    }
}

/// logits [B, N, V] → log-probabilities with the MASK id at −∞ (the model never predicts MASK),
/// in f32 for half-precision logits ([`widened`]).
pub fn log_probs_without_mask(logits: &Var, mask_id: u32) -> Result<Var> {
    let logits = &widened(logits)?;
    let v = *logits.dims().last().unwrap_or(&0);
    let mut is_mask = vec![0u8; v];
    is_mask[mask_id as usize] = 1;
    let is_mask = Tensor::from_vec(is_mask, [v], logits.value().device())?;
    logits
        .masked_fill(&is_mask, f64::NEG_INFINITY)?
        .log_softmax()
}

/// MDLM's carry-over: where the input x_t [B, L] is not MASK, the output puts all its mass on
/// the input token (log-prob 0 there, −∞ elsewhere); masked positions keep `log_probs`.
pub fn carry_over_unmasked(log_probs: &Var, x_t: &Tensor, mask_id: u32) -> Result<Var> {
    let (v, dtype, device) = (
        log_probs.dims()[2],
        log_probs.value().dtype(),
        log_probs.value().device(),
    );
    let x_t = x_t.to_device(device)?.unsqueeze(2)?; // [B, L, 1]

    // The log of the one-hot of the input token: 0 at x_t, −∞ elsewhere, [B, L, V], built on
    // the device by comparing the ids with 0..V (no host tensor of B·L·V values).
    let is_input = Tensor::arange(v, device)?.cmp(&x_t, CmpOp::Eq)?;
    let zero = Tensor::zeros((), dtype, device)?;
    let minus_inf = Tensor::full(f64::NEG_INFINITY, (), dtype, device)?;
    let fixed = is_input.where_cond(&zero, &minus_inf)?;
    let mask = Tensor::full(mask_id as f64, (), DType::U32, device)?;
    let unmasked = x_t.cmp(&mask, CmpOp::Ne)?; // [B, L, 1]
    Var::where_cond(&unmasked, &Var::constant(fixed), log_probs)
}
