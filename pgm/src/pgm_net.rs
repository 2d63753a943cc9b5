//! The PGM network (SPEC §4): embed → encoder (self-attention within a group) → GroupSwap →
//! decoder (cross-attention to the other group) → final layer → log-probabilities.
//!
//! Two entry points share every layer: `forward_train` (all L tokens, a random partition: each
//! token is predicted from the other group) and `forward_inference` (the clean tokens packed with
//! their positions, predictions only at the query positions).

use crate::attend::AttentionPattern;
use crate::blocks::{DecoderBlock, DitBlock, FinalLayer};
use crate::config::{ModelConfig, ModelKind};
use crate::group_swap::GroupSwap;
use crate::output::{check_tokens, log_probs_without_mask};
use autograd::Var;
use nn::conditioning::TimestepEmbedder;
use nn::layers::Embedding;
use nn::{Bound, ParamStore};
use tensor::{bail_shape, Device, Error, GroupRule, Result, Rng, Tensor, PAD_GROUP};

/// A partition generative model; its weights live in the `ParamStore` made with it.
pub struct PgmNetwork {
    pub config: ModelConfig,
    pub(crate) embed: Embedding,
    pub(crate) sigma_map: TimestepEmbedder,
    pub(crate) encoder: Vec<DitBlock>,
    pub(crate) group_swap: GroupSwap,
    pub(crate) decoder: Vec<DecoderBlock>,
    pub(crate) output: FinalLayer,
}

/// The clean set and the query positions of an inference step (SPEC §4, inference inputs).
pub struct InferenceInput<'a> {
    /// Clean tokens [B, N] (U32), packed in any order, right-padded.
    pub tokens: &'a Tensor,
    /// Their positions in the final sequence [B, N] (U32).
    pub positions: &'a Tensor,
    /// Real (non-pad) clean tokens per row.
    pub clean_len: &'a [usize],
    /// Positions to predict [B, M] (U32), right-padded.
    pub query_positions: &'a Tensor,
    /// Real queries per row; None = all M.
    pub query_len: Option<&'a [usize]>,
}

impl InferenceInput<'_> {
    /// The group ids of the clean tokens (0) and of the queries (1), [B, N] and [B, M] (U8),
    /// with pads in `PAD_GROUP`, after checking that the shapes agree (`op` names the caller).
    pub(crate) fn groups(&self, op: &'static str) -> Result<(Tensor, Tensor)> {
        let (b, n) = (self.tokens.dims()[0], self.tokens.dims()[1]);
        let m = self.query_positions.dims()[1];
        if self.positions.dims() != self.tokens.dims()
            || self.query_positions.dims()[0] != b
            || self.clean_len.len() != b
        {
            bail_shape!(
                op,
                "tokens {:?}, positions {:?}, query positions {:?}, {} clean lengths",
                self.tokens.shape(),
                self.positions.shape(),
                self.query_positions.shape(),
                self.clean_len.len()
            );
        }
        let groups = |width: usize, len: &dyn Fn(usize) -> usize, group: u8| {
            let ids: Vec<u8> = (0..b * width)
                .map(|i| match i % width < len(i / width) {
                    true => group,
                    false => PAD_GROUP,
                })
                .collect();
            Tensor::from_vec(ids, [b, width], Device::Cpu)
        };
        let clean = groups(n, &|r| self.clean_len[r].min(n), 0)?;
        let queries = groups(m, &|r| self.query_len.map_or(m, |q| q[r].min(m)), 1)?;
        Ok((clean, queries))
    }
}

impl PgmNetwork {
    /// A freshly initialised network and its parameters.
    pub fn new(config: &ModelConfig, store: &mut ParamStore, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        if config.model != ModelKind::Pgm {
            return Err(Error::msg(
                "PgmNetwork",
                "the config describes an MDLM, not a PGM",
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
        let encoder = (0..config.n_blocks)
            .map(|i| DitBlock::new(store, &format!("encoder.blocks.{i}"), config, rng))
            .collect::<Result<_>>()?;
        let group_swap = GroupSwap::new(store, config, rng)?;
        let decoder = (0..config.n_decoder_blocks)
            .map(|i| DecoderBlock::new(store, &format!("decoder.layers.{i}"), config, rng))
            .collect::<Result<_>>()?;
        let output = FinalLayer::new(store, config, rng)?;
        Ok(PgmNetwork {
            config: config.clone(),
            embed,
            sigma_map,
            encoder,
            group_swap,
            decoder,
            output,
        })
    }

    /// Training forward: tokens [B, L] (U32) and groups [B, L] (U8, 0 or 1) → log-probabilities
    /// [B, L, V], where position i is predicted from the tokens of the other group only.
    pub fn forward_train(
        &self,
        p: &Bound,
        tokens: &Tensor,
        groups: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Var> {
        let logits = self.train_logits(p, tokens, groups, rng)?;
        log_probs_without_mask(&logits, self.config.mask_id())
    }

    /// `forward_train` before the log-softmax: the logits [B, L, V] (MASK not yet excluded),
    /// which the loss reads through the fused `cross_entropy`.
    pub fn train_logits(
        &self,
        p: &Bound,
        tokens: &Tensor,
        groups: &Tensor,
        rng: Option<&mut Rng>,
    ) -> Result<Var> {
        if tokens.rank() != 2 || groups.dims() != tokens.dims() {
            bail_shape!(
                "pgm forward",
                "tokens {:?} and groups {:?} must both be [B, L]",
                tokens.shape(),
                groups.shape()
            );
        }
        let (b, l) = (tokens.dims()[0], tokens.dims()[1]);
        let pos = Tensor::arange(l, Device::Cpu)?
            .unsqueeze(0)?
            .broadcast_as([b, l])?
            .contiguous()?;
        self.run(p, tokens, &pos, groups, &pos, groups, rng)
    }

    /// Inference forward: the clean set and the query positions → log-probabilities [B, M, V]
    /// at the query positions. Records no tape when `p` was bound without one.
    pub fn forward_inference(&self, p: &Bound, input: &InferenceInput) -> Result<Var> {
        let (clean_groups, query_groups) = input.groups("pgm inference")?;
        let logits = self.run(
            p,
            input.tokens,
            input.positions,
            &clean_groups,
            input.query_positions,
            &query_groups,
            None,
        )?;
        log_probs_without_mask(&logits, self.config.mask_id())
    }

    /// The shared body: encoder over (tokens, positions, groups), GroupSwap and decoder from
    /// the queries' positions and groups, then the final layer's logits.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        p: &Bound,
        tokens: &Tensor,
        pos: &Tensor,
        groups: &Tensor,
        q_pos: &Tensor,
        q_groups: &Tensor,
        mut rng: Option<&mut Rng>,
    ) -> Result<Var> {
        check_tokens(tokens, self.config.vocab_size)?;
        let table = p.get(&self.embed.table)?.value();
        let (dtype, device) = (table.dtype(), table.device());
        // Inputs are built on the host; they follow the parameters to their device.
        let on = |t: &Tensor| t.to_device(device);
        let (tokens, pos, groups) = (&on(tokens)?, &on(pos)?, &on(groups)?);
        let (q_pos, q_groups) = (&on(q_pos)?, &on(q_groups)?);
        let (hd, how) = (self.config.head_dim(), self.config.attention);
        let enc = AttentionPattern::new(pos, pos, groups, groups, GroupRule::Same, hd, how, dtype)?;
        let cross = AttentionPattern::new(
            q_pos,
            pos,
            q_groups,
            groups,
            GroupRule::Different,
            hd,
            how,
            dtype,
        )?;
        let c = self.sigma_map.condition(p, &[0.0])?; // not time conditioned: sigma = 0, [1, C]
        let mut h = self.embed.forward(p, tokens)?;
        for block in &self.encoder {
            h = block.forward(p, &h, &c, &enc, rng.as_deref_mut())?;
        }
        let mut y = self
            .group_swap
            .forward(p, &h, q_pos, q_groups, groups, &cross)?;
        for block in &self.decoder {
            y = block.forward(p, &y, &h, &c, &cross, rng.as_deref_mut())?;
        }
        self.output.forward(p, &y, &c)
    }
}
