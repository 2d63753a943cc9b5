//! The order in which training windows are visited: seeded, always-full batches, resumable.
//!
//! Epoch `e` visits the windows in a permutation drawn by Fisher–Yates from
//! `Rng::seed_stream(seed, e)`, so every epoch has a fresh order that depends only on the seed
//! and the epoch number. Batches are taken from the permutation in sequence; when an epoch has
//! fewer windows left than a batch needs, the batch is completed from the start of the next
//! epoch's permutation (so every batch has exactly `batch_size` indices, and a window can appear
//! twice in a batch that straddles two epochs, or in every batch when `batch_size` exceeds the
//! number of windows).
//!
//! The whole position is three integers (seed, epoch, offset in the epoch): [`OrderState`],
//! serialisable into a training checkpoint. [`BatchOrder::resume`] rebuilds the epoch's
//! permutation and continues exactly where the saved order stopped. Memory: one `usize` per
//! window (the current permutation).

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};
use tensor::Rng;

/// Where a [`BatchOrder`] stands; what a checkpoint stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// Windows the order was built for (checked on resume).
    pub num_windows: u64,
    /// Batch size the order was built for (checked on resume).
    pub batch_size: u64,
    pub seed: u64,
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Windows of the current epoch's permutation already handed out.
    pub position: u64,
    /// Batches handed out since the start.
    pub batches: u64,
}

/// A seeded, resumable sampling order over `num_windows` windows in batches of `batch_size`.
#[derive(Clone, Debug)]
pub struct BatchOrder {
    num_windows: usize,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    position: usize,
    batches: u64,
    perm: Vec<usize>,
}

/// The permutation of `0..n` visited in `epoch`.
fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    Rng::seed_stream(seed, epoch).shuffle(&mut perm);
    perm
}

impl BatchOrder {
    /// A fresh order at epoch 0. With `num_windows == 0` or `batch_size == 0` every batch is
    /// empty (no panic; [`crate::Windows`] always has at least one window).
    pub fn new(num_windows: usize, batch_size: usize, seed: u64) -> BatchOrder {
        BatchOrder {
            num_windows,
            batch_size,
            seed,
            epoch: 0,
            position: 0,
            batches: 0,
            perm: permutation(num_windows, seed, 0),
        }
    }

    /// Continues a saved order. Errors ([`DataError::Argument`]): `num_windows` or
    /// `batch_size` differ from the ones saved in `state` (the data or the batch size changed,
    /// so the order could not continue exactly), or a position past the end of an epoch.
    pub fn resume(num_windows: usize, batch_size: usize, state: OrderState) -> Result<BatchOrder> {
        if state.num_windows != num_windows as u64 || state.batch_size != batch_size as u64 {
            return Err(DataError::argument(
                "BatchOrder::resume",
                format!(
                    "the saved order was for {} windows in batches of {}, now {} windows in \
                     batches of {}: the data or the batch size changed, so the run cannot \
                     continue exactly",
                    state.num_windows, state.batch_size, num_windows, batch_size
                ),
            ));
        }
        if state.position > num_windows as u64 {
            return Err(DataError::argument(
                "BatchOrder::resume",
                format!(
                    "saved position {} is past the end of an epoch of {num_windows} windows",
                    state.position
                ),
            ));
        }
        Ok(BatchOrder {
            num_windows,
            batch_size,
            seed: state.seed,
            epoch: state.epoch,
            position: state.position as usize,
            batches: state.batches,
            perm: permutation(num_windows, state.seed, state.epoch),
        })
    }

    /// The next batch: `batch_size` window indices in `0..num_windows`.
    pub fn next_batch(&mut self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.batch_size);
        if self.num_windows == 0 {
            return out;
        }
        while out.len() < self.batch_size {
            if self.position == self.num_windows {
                self.epoch += 1;
                self.position = 0;
                self.perm = permutation(self.num_windows, self.seed, self.epoch);
            }
            let take = (self.batch_size - out.len()).min(self.num_windows - self.position);
            out.extend_from_slice(&self.perm[self.position..self.position + take]);
            self.position += take;
        }
        self.batches += 1;
        out
    }

    /// The position to save in a checkpoint.
    pub fn state(&self) -> OrderState {
        OrderState {
            num_windows: self.num_windows as u64,
            batch_size: self.batch_size as u64,
            seed: self.seed,
            epoch: self.epoch,
            position: self.position as u64,
            batches: self.batches,
        }
    }

    /// Current epoch (0-based).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Batches handed out so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// Epochs completed, as a fraction (e.g. 2.25 = a quarter into the third epoch).
    pub fn epochs_done(&self) -> f64 {
        if self.num_windows == 0 {
            return 0.0;
        }
        self.epoch as f64 + self.position as f64 / self.num_windows as f64
    }
}
