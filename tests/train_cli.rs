//! End-to-end tests of the `train` binary: a tiny model on the built-in corpus learns, writes
//! its metrics, plot and checkpoint, resumes exactly, and bad input fails with a clear error.

use cli::metrics::Record;
use pgm::config::ModelConfig;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgm-rs-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tiny PGM preset at the byte vocabulary of the built-in corpus, written as a config file.
fn tiny_byte_config(dir: &Path) -> PathBuf {
    let config = ModelConfig {
        vocab_size: 259,
        seq_len: 32,
        ..ModelConfig::preset("pgm-tiny").unwrap()
    };
    let path = dir.join("tiny.json");
    std::fs::write(&path, config.to_json()).unwrap();
    path
}

fn train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train"))
        .args(args)
        .output()
        .expect("the train binary runs")
}

fn metrics(out: &Path) -> Vec<Record> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The arguments every run here shares: the tiny model, short logging intervals.
fn common<'a>(config: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "--config",
        config,
        "--out",
        out,
        "--steps",
        steps,
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--warmup",
        "5",
        "--schedule",
        "constant",
        "--log-every",
        "1",
        "--eval-every",
        "20",
        "--eval-batches",
        "2",
        "--quiet",
    ]
}

#[test]
fn a_short_run_learns_and_writes_metrics_plot_and_checkpoint() {
    let dir = scratch("learns");
    let config = tiny_byte_config(&dir);
    let out = dir.join("run");
    let o = train(&common(
        config.to_str().unwrap(),
        out.to_str().unwrap(),
        "60",
    ));
    assert!(o.status.success(), "train failed:\n{}", text(&o));

    let records = metrics(&out);
    assert_eq!(records.len(), 60, "one record per logged step");
    assert!(records
        .iter()
        .all(|r| r.tokens_per_s > 0.0 && r.loss.is_finite()));
    let mean = |rs: &[Record]| rs.iter().map(|r| r.loss).sum::<f64>() / rs.len() as f64;
    let (first, last) = (mean(&records[..5]), mean(&records[55..]));
    assert!(last < 0.8 * first, "training loss {first:.3} → {last:.3}");
    let vals: Vec<f64> = records.iter().filter_map(|r| r.val_loss).collect();
    assert_eq!(vals.len(), 3, "validation at steps 20, 40 and 60");

    for file in [
        "loss.png",
        "checkpoint/model.safetensors",
        "checkpoint/config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let log = text(&o);
    assert!(
        log.contains("validation loss") && log.contains("entropy floor"),
        "{log}"
    );

    // `sample` judges the samples of a model trained on the built-in corpus by its grammar.
    let ckpt = out.join("checkpoint");
    let o = Command::new(env!("CARGO_BIN_EXE_sample"))
        .args(["--checkpoint", ckpt.to_str().unwrap(), "--json"])
        .args(["--batch-size", "16", "--num-batches", "1", "--warmup", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let grammar = &report["runs"][0]["grammar"];
    let count = |k: &str| grammar[k].as_u64().unwrap_or_else(|| panic!("{report}"));
    assert!(count("grammatical") <= count("sentences"), "{grammar}");
    let reference = grammar["reference_nats_per_byte"].as_f64().unwrap();
    assert_eq!(reference, data::reference_nats_per_byte().unwrap());

    // Training into the same --out again is refused, unless --overwrite says to start over.
    let mut again = common(config.to_str().unwrap(), out.to_str().unwrap(), "1");
    let o = train(&again);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--overwrite"), "{}", text(&o));
    assert_eq!(metrics(&out).len(), 60, "the refused run kept the metrics");
    again.push("--overwrite");
    let o = train(&again);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(metrics(&out).len(), 1, "the new run replaced the metrics");
}

#[test]
fn a_resumed_run_repeats_the_uninterrupted_losses() {
    let dir = scratch("resume");
    let config = tiny_byte_config(&dir);
    let cfg = config.to_str().unwrap();
    let (whole, split) = (dir.join("whole"), dir.join("split"));

    let o = train(&common(cfg, whole.to_str().unwrap(), "24"));
    assert!(o.status.success(), "{}", text(&o));
    let o = train(&common(cfg, split.to_str().unwrap(), "12"));
    assert!(o.status.success(), "{}", text(&o));
    let resumed = [
        "--out",
        split.to_str().unwrap(),
        "--steps",
        "24",
        "--batch-size",
        "8",
        "--log-every",
        "1",
        "--eval-every",
        "20",
        "--eval-batches",
        "2",
        "--quiet",
        "--resume",
    ];
    // The optimiser's settings live in the checkpoint: changing one on resume is refused.
    let o = train(&[&resumed[..], &["--lr", "0.5"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("drop --lr"), "{}", text(&o));
    let o = train(&resumed);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resumed from"), "{}", text(&o));

    let (a, b) = (metrics(&whole), metrics(&split));
    assert_eq!(a.len(), 24);
    assert_eq!(
        b.len(),
        24,
        "the resumed run appends to the metrics of the first leg"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.step, y.step);
        assert_eq!(
            x.loss, y.loss,
            "step {}: loss differs after resuming",
            x.step
        );
        if x.val_loss.is_some() {
            assert_eq!(
                x.val_loss, y.val_loss,
                "step {}: validation loss differs",
                x.step
            );
        }
    }
}

#[test]
fn bad_data_and_flags_fail_with_a_clear_message() {
    let dir = scratch("bad");
    let config = tiny_byte_config(&dir);
    let cfg = config.to_str().unwrap();
    let out = dir.join("run");
    let out = out.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = common(cfg, out, "5");
        args.extend_from_slice(extra);
        train(&args)
    };
    let expect_error = |o: Output, needle: &str| {
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(
            t.contains("error:") && t.contains(needle),
            "expected '{needle}' in:\n{t}"
        );
        assert!(!t.contains("panicked"), "{t}");
    };

    // A missing file.
    let missing = dir.join("nope.bin");
    expect_error(run(&["--data", missing.to_str().unwrap()]), "nope.bin");

    // An llm.c shard whose header promises more tokens than the file holds.
    let mut shard = vec![0u8; 1024];
    shard[..4].copy_from_slice(&20240520i32.to_le_bytes());
    shard[4..8].copy_from_slice(&1i32.to_le_bytes());
    shard[8..12].copy_from_slice(&1000i32.to_le_bytes());
    shard.extend(std::iter::repeat_n(65u8, 100)); // 50 tokens, not 1000
    let truncated = dir.join("truncated.bin");
    std::fs::write(&truncated, &shard).unwrap();
    expect_error(
        run(&["--data", truncated.to_str().unwrap()]),
        "truncated.bin",
    );

    // A nanoGPT file with a token id at the vocabulary size.
    let mut ids = vec![65u16; 4000];
    ids[1234] = 259;
    let out_of_range = dir.join("big_id.bin");
    let bytes: Vec<u8> = ids.iter().flat_map(|t| t.to_le_bytes()).collect();
    std::fs::write(&out_of_range, bytes).unwrap();
    expect_error(run(&["--data", out_of_range.to_str().unwrap()]), "259");

    // A file shorter than one window of 32 tokens.
    let short = dir.join("short.bin");
    std::fs::write(&short, [65u8, 0, 66, 0, 67, 0]).unwrap();
    expect_error(run(&["--data", short.to_str().unwrap()]), "short.bin");

    // Flags that cannot go together, and a device that is not there.
    expect_error(run(&["--resume"]), "--resume");
    expect_error(run(&["--ema-decay", "1.5"]), "--ema-decay");
    expect_error(run(&["--grad-clip", "0"]), "--grad-clip");
    expect_error(run(&["--min-lr-ratio=-5"]), "--min-lr-ratio");
    expect_error(run(&["--device", "cuda"]), "cuda");
    expect_error(
        run(&["--dtype", "bf16"]),
        "--dtype bf16 computes on a GPU only",
    );
}
