//! `cargo run --release --bin sample`: samples from a PGM or an MDLM (SPEC §6) and measures
//! throughput the way the paper does: batch·L tokens over the wall time of one batch, averaged
//! over timed batches after warm-up.
//!
//! ```sh
//! sample --checkpoint runs/pgm-default/checkpoint              # samples from a trained model
//! sample --random-init --preset pgm-cpu --steps 128            # throughput of a fresh model
//! sample --compare --random-init --batch-size 8 --steps 128    # PGM against MDLM, and the ratio
//! sample --compare --random-init --sweep-steps 32,64,128       # the table over steps, and a plot
//! ```

use clap::Parser;
use cli::sampling_report::{print_table, write_throughput_plot, GrammarReport, Ratio, Report};
use cli::Precision;
use data::{GrammarScore, Tokenizer};
use nn::ParamStore;
use pgm::checkpoint::{self, Model};
use pgm::config::{ModelConfig, ModelKind};
use pgm::sampler::draw::DrawRule;
use pgm::sampler::{flops, sample, Order, SampleOptions, SamplerKind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tensor::{Device, Rng};

/// Buffers of 32 MiB and more are reused instead of being faulted in afresh (cli::alloc).
#[global_allocator]
static ALLOC: tensor::cpu::BlockCache = tensor::cpu::BlockCache::new();

type Error = Box<dyn std::error::Error>;

/// The paper's step count, the default of `--steps`.
const DEFAULT_STEPS: usize = 128;

/// Where `cargo run --release --bin train` (no arguments) leaves its model.
const DEFAULT_CHECKPOINT: &str = "runs/pgm-default/checkpoint";

#[derive(Parser, Debug)]
#[command(
    about = "Sample from a PGM or MDLM and measure sampling throughput (tokens/s = batch·L / latency).",
    long_about = "Sample from a PGM or MDLM and measure sampling throughput.\n\n\
        Throughput is batch·L / latency of one batch, averaged over the timed batches after \
        warm-up, as in the paper (which uses 2 warm-up and 20 timed batches of 32 at 128 steps \
        on a fresh model; our defaults are 1 and 3, for a CPU). The decoded samples of the last \
        batch go to stdout (or --output), then the report table (or, with --json, only the \
        report as JSON); progress goes to stderr. Under --compare or --sweep-steps the samples \
        of every run go to --output (named in their headers), none to stdout. For a model \
        trained on the built-in corpus the report also judges the timed batches' samples by \
        the corpus's grammar: the complete sentences it generates, and their log-probability."
)]
struct Args {
    /// A checkpoint directory (config.json + model.safetensors). Default: the default training
    /// run's, runs/pgm-default/checkpoint, when it exists and --random-init is not given.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// Use a freshly initialised model of --preset instead of a checkpoint (for throughput).
    #[arg(long)]
    random_init: bool,
    /// The preset of --random-init (pgm-cpu, mdlm-cpu, pgm-default, pgm-tiny, …). Under
    /// --compare, the PGM preset of the pair (default pgm-cpu against mdlm-cpu).
    #[arg(long)]
    preset: Option<String>,
    /// ddpm, ddpm-cache (MDLM); naive, efficient-uniform, efficient-non-uniform (PGM).
    /// Default: efficient-uniform for a PGM, ddpm-cache for an MDLM.
    #[arg(long)]
    sampler: Option<String>,
    /// Denoising steps S (1..=L). Default: 128, or the number of positions to generate
    /// (L − 1 for BOS, minus the prompt) when that is fewer.
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Timed batches (the paper: 20).
    #[arg(long, default_value_t = 3)]
    num_batches: usize,
    /// Untimed warm-up batches before them (the paper: 2).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// random, or left-to-right (the same number of positions per step, in order).
    #[arg(long, default_value = "random")]
    order: String,
    /// Take the most likely token instead of drawing.
    #[arg(long)]
    greedy: bool,
    /// Nucleus sampling: draw among the most likely tokens holding this much mass, in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Text placed right after BOS; it starts the clean set and stays unchanged.
    #[arg(long)]
    prompt: Option<String>,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// The weights' and activations' dtype: f32, or bf16 (GPU only; weights rounded once).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
    /// Write the decoded samples to this file instead of stdout (of every run, under --compare
    /// or --sweep-steps).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the report as JSON (and no samples on stdout).
    #[arg(long)]
    json: bool,
    /// Run MDLM (ddpm-cache) and PGM (efficient-uniform) of matching size on the same settings
    /// and print both and the ratio, measured and predicted by counting FLOPs.
    #[arg(long)]
    compare: bool,
    /// Comma-separated step counts: the report over them, and a plot of throughput against steps.
    #[arg(long, value_delimiter = ',', value_name = "S1,S2,…")]
    sweep_steps: Vec<usize>,
    /// Where --sweep-steps writes its plot.
    #[arg(long, default_value = "runs/sampling-throughput.png")]
    plot: PathBuf,
}

/// A loaded model with what is needed to run and describe it.
struct Loaded {
    model: Model,
    store: ParamStore,
    source: String,
    /// Trained on the built-in corpus: its samples are judged by the corpus's grammar.
    on_built_in_corpus: bool,
}

fn main() -> ExitCode {
    cli::alloc::keep_freed_buffers();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), Error> {
    if let Err(e) = args.device.check_available() {
        return Err(e.to_string().into());
    }
    args.dtype.check(args.device)?;
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        return Err(format!("--top-p must be in (0, 1], got {}", args.top_p).into());
    }
    if args.batch_size == 0 || args.num_batches == 0 {
        return Err("--batch-size and --num-batches must be at least 1".into());
    }
    let sampler = args
        .sampler
        .as_deref()
        .map(str::parse::<SamplerKind>)
        .transpose()?;
    let order = match args.order.as_str() {
        "random" => Order::Random,
        "left-to-right" => Order::LeftToRight,
        o => return Err(format!("unknown --order '{o}' (random or left-to-right)").into()),
    };
    let steps_list: Vec<Option<usize>> = if args.sweep_steps.is_empty() {
        vec![args.steps]
    } else {
        args.sweep_steps.iter().copied().map(Some).collect()
    };
    let models = load_models(&args, sampler)?;
    let tokenizers = models
        .iter()
        .map(|(loaded, _)| tokenizer(loaded.model.config()))
        .collect::<Result<Vec<_>, _>>()?;
    // Every run's options first: a step count a model cannot take fails before anything runs.
    let mut runs = Vec::new();
    for &steps in &steps_list {
        for ((loaded, kind), tok) in models.iter().zip(&tokenizers) {
            let opts = sample_options(&args, loaded, tok.as_deref(), *kind, order, steps)?;
            runs.push((loaded, tok.as_deref(), opts));
        }
    }
    let mut reports: Vec<Report> = Vec::new();
    let mut texts = Vec::new(); // (the run, its decoded samples)
    for (loaded, tok, opts) in runs {
        let (report, samples) = time_sampler(&args, loaded, tok, &opts)?;
        // The next run's buffers have other sizes: hand this run's back to the system.
        ALLOC.release();
        texts.push((
            format!("{} {} {} steps", report.model, report.sampler, report.steps),
            samples,
        ));
        reports.push(report);
    }
    let ratios = ratios(&reports, &models);
    // The samples go to --output whenever it is given; to stdout only for a single run
    // without --json (stdout then holds the report alone).
    if args.output.is_some() || (texts.len() == 1 && !args.json) {
        write_samples(&args, &texts)?;
    }
    if args.json {
        let json = serde_json::json!({ "runs": reports, "ratios": ratios });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&reports, &ratios);
    }
    if !args.sweep_steps.is_empty() {
        write_throughput_plot(&args.plot, &reports)?;
        eprintln!("plot: {}", args.plot.display());
    }
    Ok(())
}

/// The models to run, each with its sampler: one, or under --compare the PGM and MDLM pair.
fn load_models(
    args: &Args,
    sampler: Option<SamplerKind>,
) -> Result<Vec<(Loaded, SamplerKind)>, Error> {
    if args.compare {
        if args.checkpoint.is_some() || !args.random_init {
            return Err("--compare measures fresh models: use it with --random-init (and optionally --preset, the PGM of the pair)".into());
        }
        if sampler.is_some() {
            return Err(
                "--compare runs ddpm-cache against efficient-uniform; leave out --sampler".into(),
            );
        }
        let (pgm, mdlm) = matching_pair(args.preset.as_deref().unwrap_or("pgm-cpu"))?;
        return Ok(vec![
            (random_model(&mdlm, args)?, SamplerKind::DdpmCache),
            (random_model(&pgm, args)?, SamplerKind::EfficientUniform),
        ]);
    }
    // With neither source given, sample from the default training run if it is there.
    let default_run = Path::new(DEFAULT_CHECKPOINT);
    let checkpoint = match (&args.checkpoint, args.random_init) {
        (None, false) if default_run.join("config.json").is_file() => {
            eprintln!("sampling from {DEFAULT_CHECKPOINT} (the default training run)");
            Some(default_run.to_path_buf())
        }
        _ => args.checkpoint.clone(),
    };
    let loaded = match (&checkpoint, args.random_init, &args.preset) {
        (Some(_), true, _) => {
            return Err("give either --checkpoint or --random-init, not both".into())
        }
        (Some(dir), false, _) => {
            let expect = sampler.map(|s| s.model_kind());
            let (model, store) = checkpoint::load(dir, expect, args.dtype.dtype(), args.device)
                .map_err(|e| match sampler {
                    Some(s) => format!("{e} (--sampler {})", s.name()),
                    None => e.to_string(),
                })?;
            Loaded {
                model,
                store,
                source: dir.display().to_string(),
                on_built_in_corpus: trained_on_built_in_corpus(dir),
            }
        }
        (None, true, Some(preset)) => random_model(preset, args)?,
        (None, true, None) => {
            return Err("--random-init needs --preset (e.g. pgm-cpu), or use --compare".into())
        }
        (None, false, _) => {
            return Err(format!(
                "no model: give --checkpoint DIR or --random-init --preset P, or train the \
                 default run first (cargo run --release --bin train writes {DEFAULT_CHECKPOINT})"
            )
            .into())
        }
    };
    let kind = sampler.unwrap_or(match loaded.model.config().model {
        ModelKind::Pgm => SamplerKind::EfficientUniform,
        ModelKind::Mdlm => SamplerKind::DdpmCache,
    });
    Ok(vec![(loaded, kind)])
}

/// The PGM preset and the MDLM preset of matching size.
fn matching_pair(pgm: &str) -> Result<(String, String), Error> {
    let mdlm = match pgm {
        "pgm-cpu" => "mdlm-cpu",
        "pgm-default" => "mdlm-default",
        "pgm-tiny" => "mdlm-tiny",
        "pgm-6-6" | "pgm-8-8" | "pgm-6-6-d1024" => "mdlm-small",
        other => {
            return Err(format!(
                "--compare needs the PGM preset of a pair (pgm-cpu, pgm-default, pgm-tiny, pgm-6-6, pgm-8-8), got '{other}'"
            )
            .into())
        }
    };
    Ok((pgm.to_string(), mdlm.to_string()))
}

fn random_model(preset: &str, args: &Args) -> Result<Loaded, Error> {
    let cfg = ModelConfig::preset(preset)?;
    let (model, store) = Model::new(&cfg, args.dtype.dtype(), args.device, args.seed)?;
    Ok(Loaded {
        model,
        store,
        source: format!("{preset} (random init)"),
        on_built_in_corpus: false,
    })
}

/// Whether `train` recorded in the checkpoint that it trained on the built-in corpus.
fn trained_on_built_in_corpus(dir: &Path) -> bool {
    let state = std::fs::read_to_string(dir.join("train_state.json")).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&state)
        .is_ok_and(|v| v["extra"]["built_in_corpus"] == true)
}

/// The tokenizer of a vocabulary size, if one matches (byte: 259, gpt2: 50258).
fn tokenizer(cfg: &ModelConfig) -> Result<Option<Box<dyn Tokenizer>>, Error> {
    Ok(match cfg.vocab_size {
        259 => Some(data::tokenizer_by_name("byte")?),
        50258 => Some(data::tokenizer_by_name("gpt2")?),
        _ => None,
    })
}

/// The checked options of one run: `kind` with `steps` steps (None: the default, see
/// `Args::steps`) and the flags' draw rule, order and prompt.
fn sample_options(
    args: &Args,
    loaded: &Loaded,
    tok: Option<&dyn Tokenizer>,
    kind: SamplerKind,
    order: Order,
    steps: Option<usize>,
) -> Result<SampleOptions, Error> {
    let cfg = loaded.model.config();
    let mut opts = SampleOptions::new(kind, DEFAULT_STEPS, tok.map_or(0, |t| t.bos()));
    opts.order = order;
    opts.draw = DrawRule {
        greedy: args.greedy,
        top_p: args.top_p,
    };
    if let Some(text) = &args.prompt {
        let Some(t) = tok else {
            return Err(format!(
                "--prompt needs a tokenizer, and a vocabulary of {} ids matches none",
                cfg.vocab_size
            )
            .into());
        };
        opts.prompt = t
            .encode(text)
            .into_iter()
            .enumerate()
            .map(|(i, id)| (i + 1, id))
            .collect();
        if opts.prompt.len() + 1 >= cfg.seq_len {
            return Err(format!(
                "the prompt has {} tokens, and L = {} leaves no room to generate",
                opts.prompt.len(),
                cfg.seq_len
            )
            .into());
        }
    }
    opts.steps = steps.unwrap_or(DEFAULT_STEPS.min(opts.targets(cfg.seq_len)));
    opts.validate(cfg).map_err(|e| format!("{e}"))?;
    Ok(opts)
}

/// Runs warm-up and timed batches of one sampler; returns the report and the decoded samples
/// of the last batch.
fn time_sampler(
    args: &Args,
    loaded: &Loaded,
    tok: Option<&dyn Tokenizer>,
    opts: &SampleOptions,
) -> Result<(Report, Vec<String>), Error> {
    let cfg = loaded.model.config();
    let (kind, steps) = (opts.sampler, opts.steps);
    let mut rng = Rng::seed(args.seed);
    let mut latencies = Vec::new();
    let (mut last, total) = (None, args.warmup + args.num_batches);
    let mut grammar = GrammarScore::default();
    for b in 0..total {
        let phase = if b < args.warmup { "warm-up" } else { "timed" };
        eprint!(
            "{} {} S={steps}: batch {}/{total} ({phase}) … ",
            model_name(cfg),
            kind.name(),
            b + 1
        );
        let start = Instant::now();
        let out = sample(
            &loaded.model,
            &loaded.store,
            opts,
            args.batch_size,
            &mut rng,
        )?;
        let secs = start.elapsed().as_secs_f64();
        eprintln!("{secs:.2} s");
        if b >= args.warmup {
            latencies.push(secs);
            if loaded.on_built_in_corpus {
                out.tokens.iter().for_each(|row| grammar.add_window(row));
            }
        }
        last = Some(out);
    }
    let last = last.expect("at least one batch ran");
    let n = latencies.len() as f64;
    let mean = latencies.iter().sum::<f64>() / n;
    let var = latencies.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let per_row = match kind {
        SamplerKind::EfficientUniform if opts.prompt.is_empty() => {
            Some(flops::pgm_uniform_run(cfg, steps))
        }
        SamplerKind::Ddpm | SamplerKind::DdpmCache => Some(flops::mdlm_run(cfg, steps)),
        _ => None,
    };
    let texts = last
        .tokens
        .iter()
        .map(|row| match tok {
            Some(t) => t.decode(row),
            None => format!("{row:?}"),
        })
        .collect();
    let report = Report {
        device: args.device.describe(),
        model: model_name(cfg),
        source: loaded.source.clone(),
        params: cfg.num_params(),
        sampler: kind.name(),
        steps,
        batch: args.batch_size,
        seq_len: cfg.seq_len,
        warmup: args.warmup,
        timed_batches: args.num_batches,
        latency_mean_s: mean,
        latency_std_s: var.sqrt(),
        tokens_per_s: (args.batch_size * cfg.seq_len) as f64 / mean,
        model_calls: last.model_calls,
        predicted_gflop: per_row.map(|f| f * args.batch_size as f64 / 1e9),
        grammar: match loaded.on_built_in_corpus {
            true => Some(GrammarReport {
                sentences: grammar.sentences,
                grammatical: grammar.grammatical,
                known_word_fraction: Some(grammar.known_word_fraction()).filter(|f| f.is_finite()),
                nats_per_byte: Some(grammar.nats_per_byte()).filter(|n| n.is_finite()),
                reference_nats_per_byte: data::reference_nats_per_byte()?,
            }),
            false => None,
        },
    };
    Ok((report, texts))
}

fn model_name(cfg: &ModelConfig) -> &'static str {
    match cfg.model {
        ModelKind::Pgm => "pgm",
        ModelKind::Mdlm => "mdlm",
    }
}

fn ratios(reports: &[Report], models: &[(Loaded, SamplerKind)]) -> Vec<Ratio> {
    if models.len() != 2 {
        return Vec::new();
    }
    reports
        .chunks(2)
        .map(|pair| {
            let (mdlm, pgm) = (&pair[0], &pair[1]);
            Ratio {
                steps: pgm.steps,
                measured: pgm.tokens_per_s / mdlm.tokens_per_s,
                predicted: mdlm
                    .predicted_gflop
                    .zip(pgm.predicted_gflop)
                    .map(|(m, p)| m / p),
            }
        })
        .collect()
}

/// The decoded samples of each run, to --output or stdout; a run is named in the headers
/// when there are several.
fn write_samples(args: &Args, runs: &[(String, Vec<String>)]) -> Result<(), Error> {
    let mut out = String::new();
    for (run, texts) in runs {
        let run = if runs.len() > 1 {
            format!("{run}, ")
        } else {
            String::new()
        };
        for (i, t) in texts.iter().enumerate() {
            out.push_str(&format!("=== {run}sample {i} ===\n{t}\n"));
        }
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("samples: {}", path.display());
        }
        None => print!("{out}"),
    }
    Ok(())
}
