//! Model configurations: a serde struct and the presets of the paper and of our CPU runs.

use serde::{Deserialize, Serialize};
use std::path::Path;
use tensor::{Error, Result};

/// Which network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Partition generative model: encoder → GroupSwap → decoder.
    Pgm,
    /// The masked-diffusion (MDLM) DiT baseline.
    Mdlm,
}

/// How GroupSwap builds the pre-query of a target position (SPEC §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreQueryMode {
    /// A learned vector only.
    Learn,
    /// A learned vector plus sinusoidal features of the position (the default).
    #[serde(rename = "learn+freqs")]
    LearnFreqs,
    /// … plus the mean of the other group's encoder states.
    #[serde(rename = "learn+freqs+mean")]
    LearnFreqsMean,
    /// … plus the log-sum-exp of the other group's encoder states.
    #[serde(rename = "learn+freqs+logsumexp")]
    LearnFreqsLogsumexp,
}

/// The GroupSwap query processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryProcessor {
    /// Linear(D, D).
    Linear,
    /// Linear(D, 4D) → SiLU → Linear(4D, D).
    Mlp4,
}

/// How partition-masked attention is computed in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionImpl {
    /// Only the allowed pairs (tokens ordered by group, dense attention per group block).
    Gathered,
    /// All L² pairs with a boolean mask (the reference's way; for comparison).
    Dense,
}

/// Everything that fixes a network's shape and behaviour. Saved as JSON beside checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub model: ModelKind,
    /// Vocabulary size including the MASK id (the last id).
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub n_heads: usize,
    /// adaLN conditioning size C.
    pub cond_dim: usize,
    /// Encoder blocks (PGM) or DiT blocks (MDLM).
    pub n_blocks: usize,
    /// Decoder blocks (PGM only; 0 for MDLM).
    pub n_decoder_blocks: usize,
    pub mlp_ratio: usize,
    pub dropout: f64,
    /// Sequence length L (BOS + L − 2 tokens + EOS).
    pub seq_len: usize,
    pub pre_query_mode: PreQueryMode,
    pub query_processor: QueryProcessor,
    pub attention: AttentionImpl,
}

/// The names `ModelConfig::preset` accepts.
pub const PRESETS: &[&str] = &[
    "pgm-6-6",
    "pgm-8-8",
    "pgm-6-6-d1024",
    "mdlm-small",
    "pgm-cpu",
    "mdlm-cpu",
    "pgm-default",
    "mdlm-default",
    "pgm-tiny",
    "mdlm-tiny",
];

impl ModelConfig {
    fn base(
        model: ModelKind,
        vocab: usize,
        d: usize,
        heads: usize,
        blocks: usize,
        dec: usize,
        seq_len: usize,
    ) -> Self {
        ModelConfig {
            model,
            vocab_size: vocab,
            hidden_size: d,
            n_heads: heads,
            cond_dim: 128,
            n_blocks: blocks,
            n_decoder_blocks: dec,
            mlp_ratio: 4,
            dropout: 0.1,
            seq_len,
            pre_query_mode: PreQueryMode::LearnFreqs,
            query_processor: QueryProcessor::Linear,
            attention: AttentionImpl::Gathered,
        }
    }

    /// A named preset: the paper's OpenWebText models (GPT-2 vocabulary + MASK = 50258,
    /// L = 1024), the CPU-sized pair (byte vocabulary 259, D = 256) and tiny test models.
    pub fn preset(name: &str) -> Result<Self> {
        use ModelKind::{Mdlm, Pgm};
        const GPT2: usize = 50258;
        Ok(match name {
            "pgm-6-6" => Self::base(Pgm, GPT2, 768, 12, 6, 6, 1024),
            "pgm-8-8" => Self::base(Pgm, GPT2, 768, 12, 8, 8, 1024),
            "pgm-6-6-d1024" => Self::base(Pgm, GPT2, 1024, 16, 6, 6, 1024),
            "mdlm-small" => Self::base(Mdlm, GPT2, 768, 12, 12, 0, 1024),
            "pgm-cpu" => Self::base(Pgm, 259, 256, 4, 3, 3, 1024),
            "mdlm-cpu" => Self::base(Mdlm, 259, 256, 4, 6, 0, 1024),
            // The built-in default run: byte vocabulary, short windows, trains in minutes on a CPU.
            "pgm-default" => ModelConfig {
                cond_dim: 64,
                dropout: 0.0,
                ..Self::base(Pgm, 259, 128, 4, 2, 2, 128)
            },
            "mdlm-default" => ModelConfig {
                cond_dim: 64,
                dropout: 0.0,
                ..Self::base(Mdlm, 259, 128, 4, 4, 0, 128)
            },
            "pgm-tiny" => ModelConfig {
                cond_dim: 16,
                dropout: 0.0,
                ..Self::base(Pgm, 19, 32, 2, 1, 1, 16)
            },
            "mdlm-tiny" => ModelConfig {
                cond_dim: 16,
                dropout: 0.0,
                ..Self::base(Mdlm, 19, 32, 2, 2, 0, 16)
            },
            _ => {
                return Err(Error::msg(
                    "preset",
                    format!("unknown preset '{name}'; known: {}", PRESETS.join(", ")),
                ))
            }
        })
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.n_heads
    }
    /// The MASK id: the last id of the vocabulary.
    pub fn mask_id(&self) -> u32 {
        (self.vocab_size - 1) as u32
    }

    /// The number of weights, counted from the architecture (SPEC §3–4) without building it.
    pub fn num_params(&self) -> usize {
        let (d, c, v) = (self.hidden_size, self.cond_dim, self.vocab_size);
        let linear = |i: usize, o: usize, bias: bool| i * o + if bias { o } else { 0 };
        let mlp = linear(d, self.mlp_ratio * d, true) + linear(self.mlp_ratio * d, d, true);
        let ada_ln = |chunks: usize| linear(c, chunks * d, true);
        let dit_block = 2 * d + linear(d, 3 * d, false) + linear(d, d, false) + mlp + ada_ln(6);
        let shared = v * d                                   // vocab_embed
            + linear(256, c, true) + linear(c, c, true)      // sigma_map
            + d + linear(d, v, true) + ada_ln(2); // output_layer
        match self.model {
            ModelKind::Mdlm => shared + self.n_blocks * dit_block,
            ModelKind::Pgm => {
                let query_processor = match self.query_processor {
                    QueryProcessor::Linear => linear(d, d, true),
                    QueryProcessor::Mlp4 => linear(d, 4 * d, true) + linear(4 * d, d, true),
                };
                let group_swap =
                    d + 2 * d + query_processor + linear(d, 2 * d, true) + linear(d, d, true);
                let decoder_block = 3 * d
                    + linear(d, d, false)
                    + linear(d, 2 * d, false)
                    + linear(d, d, false)
                    + mlp
                    + ada_ln(6);
                shared
                    + self.n_blocks * dit_block
                    + group_swap
                    + self.n_decoder_blocks * decoder_block
            }
        }
    }

    /// Fails with a sentence for an inconsistent configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::msg("config", m));
        if self.hidden_size == 0 || self.cond_dim == 0 || self.mlp_ratio == 0 {
            return bad("hidden_size, cond_dim and mlp_ratio must be at least 1".into());
        }
        if self.n_heads == 0 || !self.hidden_size.is_multiple_of(self.n_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by n_heads {}",
                self.hidden_size, self.n_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) || !self.hidden_size.is_multiple_of(2) {
            return bad(format!(
                "head dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if self.vocab_size < 2 || self.seq_len < 2 || self.n_blocks == 0 {
            return bad(
                "vocab_size and seq_len must be at least 2, and n_blocks at least 1".into(),
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is outside [0, 1)", self.dropout));
        }
        match (self.model, self.n_decoder_blocks) {
            (ModelKind::Pgm, 0) => bad("a PGM needs at least one decoder block".into()),
            (ModelKind::Mdlm, n) if n > 0 => {
                bad("an MDLM has no decoder blocks: set n_decoder_blocks to 0".into())
            }
            _ => Ok(()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg: ModelConfig = serde_json::from_str(text)
            .map_err(|e| Error::msg("config", format!("invalid model config: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }
    /// Reads a JSON config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::msg("config", format!("{}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| Error::msg("config", format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every preset is valid; a zero size or a PGM without decoder blocks is an error that
    /// names the field.
    #[test]
    fn presets_validate_and_bad_sizes_are_refused() {
        for name in PRESETS {
            ModelConfig::preset(name).unwrap().validate().unwrap();
        }
        let base = ModelConfig::preset("pgm-tiny").unwrap();
        for (field, cfg) in [
            (
                "mlp_ratio",
                ModelConfig {
                    mlp_ratio: 0,
                    ..base.clone()
                },
            ),
            (
                "cond_dim",
                ModelConfig {
                    cond_dim: 0,
                    ..base.clone()
                },
            ),
            (
                "decoder",
                ModelConfig {
                    n_decoder_blocks: 0,
                    ..base.clone()
                },
            ),
        ] {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }
}
