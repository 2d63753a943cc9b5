//! The MDLM baseline (SPEC §3, §5): a DiT over the partly masked sequence x_t, with every token
//! attending to every token, then the final layer and MDLM's output post-processing.

use crate::attend::AttentionPattern;
use crate::blocks::{DitBlock, FinalLayer};
use crate::config::{AttentionImpl, ModelConfig, ModelKind};
use crate::output::{carry_over_unmasked, check_tokens, log_probs_without_mask};
use autograd::Var;
use nn::conditioning::TimestepEmbedder;
use nn::layers::Embedding;
use nn::{Bound, ParamStore};
use tensor::{bail_shape, Error, GroupRule, Result, Rng, Tensor};

/// The masked-diffusion DiT; its weights live in the `ParamStore` made with it.
pub struct MdlmNetwork {
    pub config: ModelConfig,
    pub(crate) embed: Embedding,
    pub(crate) sigma_map: TimestepEmbedder,
    pub(crate) blocks: Vec<DitBlock>,
    pub(crate) output: FinalLayer,
}

impl MdlmNetwork {
    pub fn new(config: &ModelConfig, store: &mut ParamStore, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        if config.model != ModelKind::Mdlm {
            return Err(Error::msg(
                "MdlmNetwork",
                "the config describes a PGM, not an MDLM",
            ));
        }
        let embed = Embedding::new(
            store,
            "vocab_embed.embedding",
            config.vocab_size,
            config.hidden_size,
            rng,
        )?;
        let sigma_map = TimestepEmbedder::new(store, config.cond_dim, rng)?;
        let blocks = (0..config.n_blocks)
            .map(|i| DitBlock::new(store, &format!("blocks.{i}"), config, rng))
            .collect::<Result<_>>()?;
        let output = FinalLayer::new(store, config, rng)?;
        Ok(MdlmNetwork {
            config: config.clone(),
            embed,
            sigma_map,
            blocks,
            output,
        })
    }

    /// x_t [B, L] (U32, MASK where masked) → log-probabilities [B, L, V]: MASK at −∞, and
    /// unmasked positions carry their input token over with probability 1.
    pub fn forward(&self, p: &Bound, x_t: &Tensor, rng: Option<&mut Rng>) -> Result<Var> {
        let mask_id = self.config.mask_id();
        let log_probs = log_probs_without_mask(&self.logits(p, x_t, rng)?, mask_id)?;
        carry_over_unmasked(&log_probs, x_t, mask_id)
    }

    /// `forward` before its output post-processing: the logits [B, L, V]. The loss reads them
    /// through the fused `cross_entropy`; it weighs unmasked positions 0, so it needs no
    /// carry-over.
    pub fn logits(&self, p: &Bound, x_t: &Tensor, mut rng: Option<&mut Rng>) -> Result<Var> {
        if x_t.rank() != 2 {
            bail_shape!("mdlm forward", "x_t must be [B, L], got {:?}", x_t.shape());
        }
        check_tokens(x_t, self.config.vocab_size)?;
        let (b, l) = (x_t.dims()[0], x_t.dims()[1]);
        let table = p.get(&self.embed.table)?.value();
        let (dtype, device) = (table.dtype(), table.device());
        let x_t = &x_t.to_device(device)?;
        let pos = Tensor::arange(l, device)?
            .unsqueeze(0)?
            .broadcast_as([b, l])?
            .contiguous()?;
        let one_group = Tensor::zeros([b, l], tensor::DType::U8, device)?;
        // Full attention is partition attention with a single group; dense needs no mask at all.
        let how = AttentionImpl::Gathered;
        let pattern = AttentionPattern::new(
            &pos,
            &pos,
            &one_group,
            &one_group,
            GroupRule::Same,
            self.config.head_dim(),
            how,
            dtype,
        )?;
        let c = self.sigma_map.condition(p, &[0.0])?;
        let mut h = self.embed.forward(p, x_t)?;
        for block in &self.blocks {
            h = block.forward(p, &h, &c, &pattern, rng.as_deref_mut())?;
        }
        self.output.forward(p, &h, &c)
    }
}
