//! Counting the floating-point work of a sampling run (multiply-add = 2 FLOPs; matrix
//! products and attention only: norms, activations and draws are a few percent).
//!
//! Per sequence, with D the hidden size, V the vocabulary, n clean tokens and m queries:
//! - a DiT block over n tokens: 2·n·D·(3D + D + 2·4D) = 24·n·D² for the linears, and
//!   4·n²·D for attention (q·kᵀ and p·v);
//! - GroupSwap: keys and values 4·n·D², queries 2·m·D² (0 when tabled), output 2·m·D²,
//!   attention 4·m·n·D;
//! - a decoder block: keys and values 4·n·D², queries, output and MLP 20·m·D², attention 4·m·n·D;
//! - the output layer: 2·m·D·V.

use super::plan::uniform_sizes;
use crate::config::ModelConfig;

/// FLOPs of one DiT block over n tokens attending to all of them.
pub fn dit_block(cfg: &ModelConfig, n: usize) -> f64 {
    let (d, n) = (cfg.hidden_size as f64, n as f64);
    24.0 * n * d * d + 4.0 * n * n * d
}

/// FLOPs of one efficient PGM step for one sequence: n clean tokens, m queries.
pub fn pgm_step(cfg: &ModelConfig, n: usize, m: usize) -> f64 {
    let (d, v) = (cfg.hidden_size as f64, cfg.vocab_size as f64);
    let (nf, mf) = (n as f64, m as f64);
    let encoder = cfg.n_blocks as f64 * dit_block(cfg, n);
    let group_swap = 4.0 * nf * d * d + 2.0 * mf * d * d + 4.0 * mf * nf * d;
    let decoder =
        cfg.n_decoder_blocks as f64 * (4.0 * nf * d * d + 20.0 * mf * d * d + 4.0 * mf * nf * d);
    encoder + group_swap + decoder + 2.0 * mf * d * v
}

/// FLOPs of one MDLM trunk run over L positions for one sequence (output layer excluded).
pub fn mdlm_trunk(cfg: &ModelConfig) -> f64 {
    cfg.n_blocks as f64 * dit_block(cfg, cfg.seq_len)
}

/// FLOPs of a whole `efficient-uniform` run for one sequence (no prompt).
pub fn pgm_uniform_run(cfg: &ModelConfig, steps: usize) -> f64 {
    let mut clean = 1; // BOS
    let mut total = 0.0;
    for m in uniform_sizes(cfg.seq_len - 1, steps) {
        total += pgm_step(cfg, clean, m);
        clean += m;
    }
    total
}

/// FLOPs of a whole lean MDLM run for one sequence: the trunk at each of the S steps (at
/// L = 1024 some row of a batch reveals a position at nearly every step) and the output layer
/// at the L − 1 drawn positions.
pub fn mdlm_run(cfg: &ModelConfig, steps: usize) -> f64 {
    let (d, v) = (cfg.hidden_size as f64, cfg.vocab_size as f64);
    steps as f64 * mdlm_trunk(cfg) + 2.0 * (cfg.seq_len - 1) as f64 * d * v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_pair_predicts_about_four() {
        let pgm = ModelConfig::preset("pgm-cpu").unwrap();
        let mdlm = ModelConfig::preset("mdlm-cpu").unwrap();
        let ratio = mdlm_run(&mdlm, 128) / pgm_uniform_run(&pgm, 128);
        assert!(ratio > 3.5 && ratio < 4.5, "predicted ratio {ratio}");
        // One step of MDLM over L equals L tokens through its blocks.
        let d = 256.0f64;
        let l = 1024.0f64;
        assert_eq!(
            mdlm_trunk(&mdlm),
            6.0 * (24.0 * l * d * d + 4.0 * l * l * d)
        );
    }
}
