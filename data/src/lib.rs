//! Memory-mapped token datasets, tokenizers and batching (to come).
