//! `cargo run --release --bin train`: trains a PGM (or the MDLM baseline) end to end.
//!
//! With no arguments it trains the `pgm-default` model on the built-in corpus (an English-like
//! grammar whose entropy per byte is known exactly, written on first use), evaluates it, and
//! prints where the validation loss started, where it ended, and the floor a perfect model
//! would reach. `--help` lists every option.

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use cli::metrics::{write_loss_plot, MetricsLog, Record};
use cli::Precision;
use data::{BatchOrder, OrderState, Windows};
use indicatif::{ProgressBar, ProgressStyle};
use pgm::checkpoint::Model;
use pgm::config::{ModelConfig, ModelKind};
use pgm::trainer::{TrainConfig, Trainer};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tensor::{DType, Device, Tensor};

/// Buffers of 32 MiB and more are reused instead of being faulted in afresh (cli::alloc).
#[global_allocator]
static ALLOC: tensor::cpu::BlockCache = tensor::cpu::BlockCache::new();

type Error = Box<dyn std::error::Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Schedule {
    Constant,
    Cosine,
}

#[derive(Parser, Debug)]
#[command(
    about = "Train a partition generative model (PGM) or the MDLM baseline",
    version
)]
struct Args {
    /// Which network to train.
    #[arg(long, value_enum, default_value = "pgm")]
    model: Kind,
    /// A named model size (default: `<model>-default`). One of: pgm-6-6, pgm-8-8, pgm-6-6-d1024,
    /// mdlm-small, pgm-cpu, mdlm-cpu, pgm-default, mdlm-default, pgm-tiny, mdlm-tiny.
    #[arg(long)]
    preset: Option<String>,
    /// A JSON model config (overrides --preset; see a checkpoint's config.json for the fields).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training tokens: a nanoGPT .bin, an llm.c shard or our u32 file. Default: the built-in
    /// corpus, generated into `<out>/../default-corpus` on first use.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Validation tokens (default: the last --val-fraction of the training windows).
    #[arg(long)]
    val_data: Option<PathBuf>,
    #[arg(long, default_value_t = 0.02)]
    val_fraction: f64,
    /// Optimiser steps in total (a resumed run continues up to this count).
    #[arg(long, default_value_t = 600)]
    steps: u64,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Micro-batches per optimiser step (their gradients are averaged).
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 50)]
    warmup: u64,
    #[arg(long, value_enum, default_value = "cosine")]
    schedule: Schedule,
    #[arg(long, default_value_t = 0.1)]
    min_lr_ratio: f64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Clip the global gradient norm to this value.
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f64,
    /// Decay of the weights' moving average used for evaluation, sampling and checkpoints.
    #[arg(long, default_value_t = 0.995)]
    ema_decay: f64,
    /// Override the model's dropout.
    #[arg(long)]
    dropout: Option<f64>,
    #[arg(long, default_value_t = 100)]
    eval_every: u64,
    /// Validation batches per evaluation.
    #[arg(long, default_value_t = 8)]
    eval_batches: usize,
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    /// Write a checkpoint every N steps (and always at the end).
    #[arg(long, default_value_t = 200)]
    save_every: u64,
    /// Output directory: checkpoint/, metrics.jsonl, loss.png. Default: `runs/<model>-default`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from `<out>/checkpoint` (same data; the losses repeat an uninterrupted run's).
    #[arg(long)]
    resume: bool,
    /// Start afresh in an `--out` that already holds a checkpoint, replacing it.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, or cuda / cuda:N (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// What the forward and backward passes compute in: f32, or bf16 (mixed precision on a
    /// GPU: bf16 activations and matmuls, f32 master weights, optimizer state and loss).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
    /// Log lines instead of a progress bar (also the default when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Print every preset with its size and parameter count, then exit.
    #[arg(long)]
    list_presets: bool,
    /// The flags of [`SAVED_WITH_THE_RUN`] given on the command line.
    #[arg(skip)]
    given_run_settings: Vec<&'static str>,
}

/// Settings a checkpoint keeps (the optimiser's and the model's): `--resume` continues with
/// them, so giving one of these flags with it is an error rather than silently ignored.
const SAVED_WITH_THE_RUN: [&str; 9] = [
    "lr",
    "warmup",
    "schedule",
    "min_lr_ratio",
    "weight_decay",
    "grad_clip",
    "ema_decay",
    "dropout",
    "seed",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Pgm,
    Mdlm,
}

fn main() -> ExitCode {
    cli::alloc::keep_freed_buffers();
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    args.given_run_settings = SAVED_WITH_THE_RUN
        .into_iter()
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .collect();
    cli::report(run(args))
}

/// Everything the data side of a run needs, and what a checkpoint stores of it.
struct DataSide {
    train: Windows,
    val: Windows,
    order: BatchOrder,
    tokenizer: &'static str,
    /// The entropy floor (nats per token) when training on the built-in corpus.
    floor: Option<f64>,
}

fn run(args: Args) -> Result<(), Error> {
    if args.list_presets {
        return list_presets();
    }
    check_args(&args)?;
    let kind = match args.model {
        Kind::Pgm => ModelKind::Pgm,
        Kind::Mdlm => ModelKind::Mdlm,
    };
    let name = format!(
        "{}-default",
        if kind == ModelKind::Pgm {
            "pgm"
        } else {
            "mdlm"
        }
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs").join(&name));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let ckpt = out.join("checkpoint");
    if !args.resume && !args.overwrite && ckpt.join("train_state.json").exists() {
        return Err(format!(
            "{} already holds a trained run: continue it with --resume, replace it with --overwrite, or train into another --out",
            out.display()
        )
        .into());
    }

    let (mut trainer, mut data) = if args.resume {
        if !ckpt.join("train_state.json").exists() {
            return Err(format!(
                "--resume: no checkpoint in {} (train without --resume first)",
                ckpt.display()
            )
            .into());
        }
        let (trainer, extra) = Trainer::resume(&ckpt, args.device)?;
        if trainer.model.config().model != kind {
            return Err(format!(
                "--model {:?} but {} holds a {:?}",
                args.model,
                ckpt.display(),
                trainer.model.config().model
            )
            .into());
        }
        let state: OrderState = serde_json::from_value(extra["order"].clone())
            .map_err(|e| format!("{}: data order: {e}", ckpt.display()))?;
        let data = open_data(&args, &out, trainer.model.config(), Some(state))?;
        println!(
            "resumed from {} at step {}",
            ckpt.display(),
            trainer.step_count()
        );
        (trainer, data)
    } else {
        let mut config = match (&args.config, &args.preset) {
            (Some(path), _) => ModelConfig::load(path)?,
            (None, Some(p)) => ModelConfig::preset(p)?,
            (None, None) => ModelConfig::preset(&name)?,
        };
        if config.model != kind {
            return Err(format!(
                "--model {:?} but the config describes a {:?}",
                args.model, config.model
            )
            .into());
        }
        if let Some(p) = args.dropout {
            config.dropout = p;
        }
        config.validate()?;
        let data = open_data(&args, &out, &config, None)?;
        let (model, params) = Model::new(&config, DType::F32, args.device, args.seed)?;
        (Trainer::new(model, params, train_config(&args)), data)
    };
    trainer.config.total_steps = args.steps;
    trainer.set_compute_dtype(args.dtype.dtype());
    let cfg = trainer.model.config().clone();
    println!(
        "{:?} model: {} parameters (D = {}, {} heads, {}{} blocks), L = {}, vocabulary {} ({} tokenizer)",
        cfg.model,
        cfg.num_params(),
        cfg.hidden_size,
        cfg.n_heads,
        cfg.n_blocks,
        if cfg.model == ModelKind::Pgm { format!("+{}", cfg.n_decoder_blocks) } else { String::new() },
        cfg.seq_len,
        cfg.vocab_size,
        data.tokenizer
    );
    println!(
        "data: {} training windows, {} validation windows",
        data.train.len(),
        data.val.len()
    );
    println!(
        "device: {}, computing in {:?}",
        args.device.describe(),
        args.dtype.dtype()
    );

    let val_batches: Vec<Tensor> = validation_batches(
        &data.val,
        args.batch_size,
        args.eval_batches,
        cfg.seq_len,
        cfg.vocab_size,
    )?;
    let (mut log, history) = MetricsLog::open(
        &out.join("metrics.jsonl"),
        args.resume.then_some(trainer.step_count()),
    )?;
    let mut records = history;
    let tokens_per_step = (args.batch_size * args.grad_accum * cfg.seq_len) as f64;

    // The first evaluation: before training, or the earliest one logged before a resume.
    let first_val = match records.iter().find_map(|r| r.val_loss.map(|v| (r.step, v))) {
        Some(first) => first,
        None => {
            let v = trainer.evaluate(&val_batches, args.seed)?;
            println!(
                "step {:>6}  validation loss {v:.4} (perplexity {:.2})",
                trainer.step_count(),
                v.exp()
            );
            (trainer.step_count(), v)
        }
    };
    // A progress bar on a terminal; plain log lines when asked for or when stderr is a file.
    let log_lines = args.quiet || !std::io::stderr().is_terminal();
    let bar = progress_bar(&args, trainer.step_count(), log_lines);
    let mut last_val = first_val.1;
    let mut window_start = (Instant::now(), trainer.step_count());
    let save = |trainer: &Trainer, data: &DataSide| -> Result<(), Error> {
        let extra = serde_json::json!({
            "order": data.order.state(),
            "tokenizer": data.tokenizer,
            "built_in_corpus": data.floor.is_some(),
        });
        Ok(trainer.save(&ckpt, extra)?)
    };
    let trained = trainer.step_count() < args.steps;
    while trainer.step_count() < args.steps {
        let micro: Vec<Tensor> = (0..args.grad_accum)
            .map(|_| {
                let idx = data.order.next_batch();
                let ids = data.train.batch(&idx, cfg.vocab_size)?;
                Ok(Tensor::from_vec(
                    ids,
                    [args.batch_size, cfg.seq_len],
                    Device::Cpu,
                )?)
            })
            .collect::<Result<_, Error>>()?;
        let stats = trainer.step(&micro)?;
        let step = trainer.step_count();
        let elapsed = window_start.0.elapsed().as_secs_f64().max(1e-9);
        let tokens_per_s = (step - window_start.1) as f64 * tokens_per_step / elapsed;
        bar.set_position(step);
        bar.set_message(format!("loss {:.4}  {:.0} tok/s", stats.loss, tokens_per_s));
        let evaluate = step % args.eval_every == 0 || step == args.steps;
        if step % args.log_every == 0 || evaluate {
            let mut r = Record {
                step,
                loss: stats.loss,
                lr: stats.lr,
                tokens_per_s,
                val_loss: None,
                val_ppl: None,
            };
            if evaluate {
                let v = trainer.evaluate(&val_batches, args.seed)?;
                (r.val_loss, r.val_ppl, last_val) = (Some(v), Some(v.exp()), v);
                let line = format!(
                    "step {step:>6}  train loss {:.4}  validation loss {v:.4} (perplexity {:.2})",
                    stats.loss,
                    v.exp()
                );
                match log_lines {
                    true => println!("{line}"),
                    false => bar.println(line),
                }
            } else if log_lines {
                println!(
                    "step {step:>6}  loss {:.4}  lr {:.2e}  {tokens_per_s:.0} tok/s",
                    stats.loss, stats.lr
                );
            }
            log.append(&r)?;
            records.push(r);
            window_start = (Instant::now(), step);
        }
        if step % args.save_every == 0 || step == args.steps {
            save(&trainer, &data)?;
        }
    }
    if !trained {
        save(&trainer, &data)?; // --steps at or below the start: the checkpoint still exists
    }
    bar.finish_and_clear();
    let plot = out.join("loss.png");
    let model = if cfg.model == ModelKind::Pgm {
        "PGM"
    } else {
        "MDLM"
    };
    let title = format!("{model} training, {} parameters", cfg.num_params());
    write_loss_plot(&plot, &title, &records, first_val, data.floor)
        .map_err(|e| format!("{}: {e}", plot.display()))?;
    println!(
        "validation loss: {:.4} at step {} → {last_val:.4} at step {}",
        first_val.1,
        first_val.0,
        trainer.step_count()
    );
    if let Some(floor) = data.floor {
        println!("entropy floor of the built-in corpus: {floor:.4} nats per token (a perfect model's loss)");
    }
    println!(
        "wrote {}/checkpoint, {}, {}/loss.png",
        out.display(),
        log.path().display(),
        out.display()
    );
    Ok(())
}

fn list_presets() -> Result<(), Error> {
    println!(
        "{:<15} {:>5} {:>6} {:>5} {:>7} {:>5} {:>7} {:>13}",
        "preset", "model", "D", "heads", "blocks", "L", "vocab", "parameters"
    );
    for name in pgm::config::PRESETS {
        let c = ModelConfig::preset(name)?;
        let blocks = match c.model {
            ModelKind::Pgm => format!("{}+{}", c.n_blocks, c.n_decoder_blocks),
            ModelKind::Mdlm => c.n_blocks.to_string(),
        };
        let kind = if c.model == ModelKind::Pgm {
            "pgm"
        } else {
            "mdlm"
        };
        println!(
            "{name:<15} {kind:>5} {:>6} {:>5} {blocks:>7} {:>5} {:>7} {:>13}",
            c.hidden_size,
            c.n_heads,
            c.seq_len,
            c.vocab_size,
            c.num_params()
        );
    }
    Ok(())
}

fn check_args(args: &Args) -> Result<(), Error> {
    let bad = |m: &str| Err(m.to_string().into());
    if args.batch_size == 0
        || args.grad_accum == 0
        || args.eval_every == 0
        || args.log_every == 0
        || args.save_every == 0
        || args.eval_batches == 0
    {
        return bad("--batch-size, --grad-accum, --eval-every, --eval-batches, --log-every and --save-every must be at least 1");
    }
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return bad("--lr must be a positive number");
    }
    if !(0.0..1.0).contains(&args.ema_decay) || !(0.0..0.5).contains(&args.val_fraction) {
        return bad("--ema-decay must be in [0, 1) and --val-fraction in [0, 0.5)");
    }
    if args.grad_clip.is_nan() || args.grad_clip <= 0.0 {
        return bad("--grad-clip must be positive (inf: no clipping)");
    }
    let decay_ok = args.weight_decay >= 0.0 && args.weight_decay.is_finite();
    if !(0.0..=1.0).contains(&args.min_lr_ratio) || !decay_ok {
        return bad("--min-lr-ratio must be in [0, 1] and --weight-decay at least 0");
    }
    if args.dropout.is_some_and(|p| !(0.0..1.0).contains(&p)) {
        return bad("--dropout must be in [0, 1)");
    }
    if args.resume && (args.preset.is_some() || args.config.is_some()) {
        return bad("--resume takes the model from the checkpoint: drop --preset / --config");
    }
    if args.resume && !args.given_run_settings.is_empty() {
        let flags: Vec<String> = (args.given_run_settings.iter())
            .map(|id| format!("--{}", id.replace('_', "-")))
            .collect();
        return Err(format!(
            "--resume continues with the settings saved in the checkpoint: drop {} (or train into another --out)",
            flags.join(", ")
        )
        .into());
    }
    if let Err(e) = args.device.check_available() {
        return bad(&e.to_string());
    }
    if let Err(e) = args.dtype.check(args.device) {
        return bad(&e);
    }
    Ok(())
}

fn train_config(args: &Args) -> TrainConfig {
    TrainConfig {
        lr: args.lr,
        warmup: args.warmup,
        cosine: args.schedule == Schedule::Cosine,
        min_lr_ratio: args.min_lr_ratio,
        total_steps: args.steps,
        weight_decay: args.weight_decay,
        beta1: 0.9,
        beta2: 0.999,
        grad_clip: args.grad_clip,
        ema_decay: args.ema_decay,
        seed: args.seed,
    }
}

/// Opens the training and validation windows (generating the built-in corpus if asked for)
/// and the sampling order, fresh or resumed.
fn open_data(
    args: &Args,
    out: &Path,
    cfg: &ModelConfig,
    resume: Option<OrderState>,
) -> Result<DataSide, Error> {
    let tokenizer: &'static str = match cfg.vocab_size {
        259 => "byte",
        50258 => "gpt2",
        v => return Err(format!("the model's vocabulary of {v} ids matches no tokenizer (byte: 259, gpt2: 50258): pick another preset, or set vocab_size in a --config file").into()),
    };
    let tok = data::tokenizer_by_name(tokenizer)?;
    let (train_path, val_path, floor) = match &args.data {
        Some(p) => (p.clone(), args.val_data.clone(), None),
        None => {
            if tokenizer != "byte" {
                return Err("the built-in corpus is byte-level: use a byte-vocabulary model (e.g. --preset pgm-default) or give --data".into());
            }
            let dir = out
                .parent()
                .unwrap_or(Path::new("."))
                .join("default-corpus");
            let corpus = data::ensure_default_dataset(&dir)?;
            (
                corpus.train_path,
                Some(args.val_data.clone().unwrap_or(corpus.val_path)),
                Some(corpus.entropy_nats_per_token),
            )
        }
    };
    let open = |p: &Path| -> Result<Windows, Error> {
        let file = data::TokenFile::open(p)?;
        file.check_vocab(cfg.vocab_size)?; // a bad id fails here, naming the file and offset
        Ok(Windows::new(file, cfg.seq_len, tok.bos(), tok.eos())?)
    };
    let (train, val) = match val_path {
        Some(v) => (open(&train_path)?, open(&v)?),
        None => open(&train_path)?.split(args.val_fraction)?,
    };
    if val.is_empty() {
        return Err(
            "the validation split is empty: give --val-data or a larger --val-fraction".into(),
        );
    }
    let order = match resume {
        Some(state) => BatchOrder::resume(train.len(), args.batch_size, state)?,
        None => BatchOrder::new(train.len(), args.batch_size, args.seed),
    };
    Ok(DataSide {
        train,
        val,
        order,
        tokenizer,
        floor,
    })
}

/// The first `count` batches of the validation windows, in order (the same at every evaluation).
fn validation_batches(
    val: &Windows,
    batch: usize,
    count: usize,
    seq_len: usize,
    vocab: usize,
) -> Result<Vec<Tensor>, Error> {
    let n = val.len();
    let rows = batch.min(n);
    (0..count.min(n.div_ceil(rows)))
        .map(|b| {
            let idx: Vec<usize> = (0..rows).map(|r| (b * rows + r) % n).collect();
            Ok(Tensor::from_vec(
                val.batch(&idx, vocab)?,
                [rows, seq_len],
                Device::Cpu,
            )?)
        })
        .collect()
}

fn progress_bar(args: &Args, start: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(args.steps).with_position(start);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("template"),
    );
    bar
}
