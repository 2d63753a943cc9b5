//! The report of the `sample` binary: one row per timed run, the PGM / MDLM ratios under
//! `--compare`, the grammar's verdict on samples of a model trained on the built-in corpus,
//! and the throughput plot of `--sweep-steps`.

use crate::plot::{Plot, Series};
use serde::Serialize;
use std::path::Path;

/// One timed configuration.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    /// Where it ran, e.g. "cuda:0 (NVIDIA H200)" or "cpu (2 threads)".
    pub device: String,
    pub model: &'static str,
    pub source: String,
    pub params: usize,
    pub sampler: &'static str,
    pub steps: usize,
    pub batch: usize,
    pub seq_len: usize,
    pub warmup: usize,
    pub timed_batches: usize,
    pub latency_mean_s: f64,
    pub latency_std_s: f64,
    pub tokens_per_s: f64,
    /// Network runs per batch (the last batch).
    pub model_calls: usize,
    /// FLOPs of one batch by the count of `pgm::sampler::flops` (efficient-uniform and the lean
    /// MDLM; null for other samplers).
    pub predicted_gflop: Option<f64>,
    /// The samples judged by the built-in corpus's grammar, for a model trained on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grammar: Option<GrammarReport>,
}

/// What [`data::GrammarScore`] found in the samples of a run's timed batches.
#[derive(Serialize, Clone, Debug)]
pub struct GrammarReport {
    /// Complete sentences in the samples.
    pub sentences: usize,
    /// Those of them that the grammar generates.
    pub grammatical: usize,
    /// The fraction of their words that are in the grammar's lexicon (null: no words).
    pub known_word_fraction: Option<f64>,
    /// −ln P per byte of those, under the grammar (null when there are none).
    pub nats_per_byte: Option<f64>,
    /// What the grammar's own sentences average (`data::reference_nats_per_byte`).
    pub reference_nats_per_byte: f64,
}

/// PGM / MDLM at each step count, measured (throughput) and predicted (FLOPs), for --compare.
#[derive(Serialize, Clone, Debug)]
pub struct Ratio {
    pub steps: usize,
    pub measured: f64,
    pub predicted: Option<f64>,
}

/// The report as a table on stdout, then the ratios and the grammar's verdicts.
pub fn print_table(reports: &[Report], ratios: &[Ratio]) {
    if let Some(r) = reports.first() {
        println!("device: {}", r.device);
    }
    println!(
        "{:<5} {:>7} {:<22} {:>5} {:>5} {:>5} {:>20} {:>10} {:>6} {:>9}",
        "model",
        "params",
        "sampler",
        "steps",
        "batch",
        "L",
        "latency (s)",
        "tokens/s",
        "calls",
        "GFLOP"
    );
    for r in reports {
        println!(
            "{:<5} {:>6.2}M {:<22} {:>5} {:>5} {:>5} {:>11.3} ± {:<6.3} {:>10.1} {:>6} {:>9}",
            r.model,
            r.params as f64 / 1e6,
            r.sampler,
            r.steps,
            r.batch,
            r.seq_len,
            r.latency_mean_s,
            r.latency_std_s,
            r.tokens_per_s,
            r.model_calls,
            r.predicted_gflop.map_or("-".into(), |g| format!("{g:.0}")),
        );
    }
    for r in ratios {
        println!(
            "PGM / MDLM at {} steps: {:.2}x measured, {} predicted by FLOP count",
            r.steps,
            r.measured,
            r.predicted.map_or("-".into(), |p| format!("{p:.2}x"))
        );
    }
    for r in reports {
        let Some(g) = &r.grammar else { continue };
        let nll = g.nats_per_byte.map_or("-".into(), |n| format!("{n:.3}"));
        let known = g
            .known_word_fraction
            .map_or("-".into(), |f| format!("{:.1}", 100.0 * f));
        println!(
            "grammar of the built-in corpus, {} {} {} steps:\n  {} of {} complete sentences \
             are its ({:.1} %), {known} % of their words are in its lexicon, {nll} nats per \
             byte under it (its own sentences: {:.3})",
            r.model,
            r.sampler,
            r.steps,
            g.grammatical,
            g.sentences,
            100.0 * g.grammatical as f64 / g.sentences.max(1) as f64,
            g.reference_nats_per_byte
        );
    }
}

/// Throughput against steps, one line per model and sampler (`--sweep-steps`).
pub fn write_throughput_plot(path: &Path, reports: &[Report]) -> Result<(), String> {
    let mut series: Vec<Series> = Vec::new();
    for r in reports {
        let name = format!("{} {}", r.model.to_uppercase(), r.sampler);
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push((r.steps as f64, r.tokens_per_s)),
            None => series.push(Series {
                name,
                points: vec![(r.steps as f64, r.tokens_per_s)],
            }),
        }
    }
    let r = &reports[0];
    let plot = Plot {
        title: format!("sampling throughput, batch {}, L = {}", r.batch, r.seq_len),
        x_label: "steps".into(),
        y_label: "tokens/s".into(),
        series,
        log_y: false,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    plot.write_png(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}
