//! The `sample` binary end to end: bad flags fail with exit code 2 and a clear message, and a
//! tiny run prints a JSON report.

use std::process::Command;

fn sample(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sample"))
        .args(args)
        .output()
        .expect("the sample binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A freshly initialised model of `preset` saved as a checkpoint in a new temporary folder.
fn fresh_checkpoint(preset: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pgm-sample-cli-{preset}-{}", std::process::id()));
    let cfg = pgm::config::ModelConfig::preset(preset).unwrap();
    let (_, store) =
        pgm::checkpoint::Model::new(&cfg, tensor::DType::F32, tensor::Device::Cpu, 0).unwrap();
    pgm::checkpoint::save(&dir, &cfg, &store).unwrap();
    dir
}

#[test]
fn bad_flags_are_clear_errors() {
    let tiny = ["--random-init", "--preset", "pgm-tiny"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--steps", "17"],
            "between 1 and the sequence length L = 16",
        ),
        (vec!["--top-p", "0"], "--top-p must be in (0, 1]"),
        (vec!["--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (vec!["--sampler", "beam"], "unknown sampler 'beam'"),
        (
            vec!["--sampler", "ddpm-cache"],
            "the ddpm-cache sampler needs a Mdlm model",
        ),
        (vec!["--order", "sideways"], "unknown --order 'sideways'"),
        (
            vec!["--dtype", "bf16"],
            "--dtype bf16 computes on a GPU only",
        ),
        (vec!["--device", "cuda:7"], "cuda:7"),
    ];
    for (extra, want) in cases {
        let args: Vec<&str> = tiny.iter().copied().chain(extra.iter().copied()).collect();
        let (code, _, err) = sample(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("error:") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, err) = sample(&["--checkpoint", "/no/such/dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such checkpoint directory"), "{err}");
    // No model given, and no default run in the working directory to fall back on.
    let out = Command::new(env!("CARGO_BIN_EXE_sample"))
        .args(["--steps", "4"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--checkpoint DIR or --random-init"), "{err}");
}

#[test]
fn a_pgm_sampler_on_an_mdlm_checkpoint_is_refused() {
    let dir = fresh_checkpoint("mdlm-tiny");
    let dir_s = dir.to_str().unwrap();
    let (code, _, err) = sample(&["--checkpoint", dir_s, "--sampler", "efficient-uniform"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds a Mdlm checkpoint, but a Pgm model"),
        "{err}"
    );
    // The default sampler of an MDLM checkpoint is ddpm-cache, and it runs.
    let (code, out, err) = sample(&["--checkpoint", dir_s, "--steps", "5", "--num-batches", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ddpm-cache") && out.contains("=== sample 0 ==="),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_default_steps_fit_a_short_checkpoint() {
    // pgm-tiny has L = 16: BOS and 15 positions to generate, fewer than the default 128 steps.
    let dir = fresh_checkpoint("pgm-tiny");
    let dir_s = dir.to_str().unwrap();
    let (code, out, err) = sample(&["--checkpoint", dir_s, "--num-batches", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    assert_eq!(v["runs"][0]["steps"], 15);
    // Asked for explicitly, too many steps are still an error; in a sweep, before any run.
    let (code, _, err) = sample(&["--checkpoint", dir_s, "--steps", "16"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("use at most 15 steps"), "{err}");
    let (code, _, err) = sample(&["--checkpoint", dir_s, "--sweep-steps", "4,16"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("use at most 15 steps"), "{err}");
    assert!(!err.contains("S=4: batch"), "the 4-step run started: {err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_tiny_run_reports_json() {
    let (code, out, err) = sample(&[
        "--random-init",
        "--preset",
        "pgm-tiny",
        "--steps",
        "5",
        "--batch-size",
        "3",
        "--num-batches",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    let run = &v["runs"][0];
    assert_eq!(run["sampler"], "efficient-uniform");
    assert_eq!(run["model"], "pgm");
    assert_eq!(run["steps"], 5);
    assert!(
        run["device"].as_str().unwrap().starts_with("cpu ("),
        "{run}"
    );
    assert_eq!(run["batch"], 3);
    assert_eq!(run["seq_len"], 16);
    assert_eq!(run["timed_batches"], 2);
    assert_eq!(run["model_calls"], 5);
    assert!(
        run.get("grammar").is_none(),
        "a fresh model is not judged: {run}"
    );
    let (lat, tps) = (
        run["latency_mean_s"].as_f64().unwrap(),
        run["tokens_per_s"].as_f64().unwrap(),
    );
    assert!(
        lat > 0.0 && ((3.0 * 16.0 / lat) - tps).abs() < 1e-6 * tps,
        "{run}"
    );
}

#[test]
fn compare_prints_both_and_the_ratio() {
    let output = std::env::temp_dir().join(format!("pgm-samples-{}.txt", std::process::id()));
    let (code, out, err) = sample(&[
        "--compare",
        "--random-init",
        "--preset",
        "pgm-tiny",
        "--sweep-steps",
        "3,5",
        "--num-batches",
        "1",
        "--warmup",
        "0",
        "--json",
        "--output",
        output.to_str().unwrap(),
        "--plot",
        std::env::temp_dir()
            .join(format!("pgm-sweep-{}.png", std::process::id()))
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    // --output holds every run's samples, each run named.
    let samples = std::fs::read_to_string(&output).unwrap();
    assert!(
        samples.contains("=== mdlm ddpm-cache 3 steps, sample 0 ==="),
        "{samples}"
    );
    assert!(
        samples.contains("=== pgm efficient-uniform 5 steps, sample 0 ==="),
        "{samples}"
    );
    assert_eq!(runs[0]["sampler"], "ddpm-cache");
    assert_eq!(runs[1]["sampler"], "efficient-uniform");
    let ratios = v["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 2);
    let r = &ratios[1];
    let want =
        runs[3]["tokens_per_s"].as_f64().unwrap() / runs[2]["tokens_per_s"].as_f64().unwrap();
    assert!((r["measured"].as_f64().unwrap() - want).abs() < 1e-9 * want);
    assert!(r["predicted"].as_f64().unwrap() > 0.0);
}
