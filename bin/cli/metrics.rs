//! `metrics.jsonl`: one JSON object per logged step, appended as training goes.

use crate::plot::{Plot, Series};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One logged step.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Record {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub tokens_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub val_ppl: Option<f64>,
}

/// Appends records to a JSONL file, flushing each line.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `path`; a fresh run truncates it, a resumed run keeps the records up to `keep_until`
    /// (later ones belong to the interrupted part that is being redone).
    pub fn open(
        path: &Path,
        keep_until: Option<u64>,
    ) -> std::io::Result<(MetricsLog, Vec<Record>)> {
        let kept: Vec<Record> = match keep_until {
            Some(step) if path.exists() => {
                read(path)?.into_iter().filter(|r| r.step <= step).collect()
            }
            _ => vec![],
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        for r in &kept {
            writeln!(
                file,
                "{}",
                serde_json::to_string(r).expect("a record serialises")
            )?;
        }
        Ok((
            MetricsLog {
                path: path.to_path_buf(),
                file,
            },
            kept,
        ))
    }
    pub fn append(&mut self, r: &Record) -> std::io::Result<()> {
        writeln!(
            self.file,
            "{}",
            serde_json::to_string(r).expect("a record serialises")
        )?;
        self.file.flush()
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every record of a metrics file.
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let mut out = vec![];
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            out.push(
                serde_json::from_str(&line)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            );
        }
    }
    Ok(out)
}

/// Plots train and validation loss against steps (the validation series starts with the
/// evaluation `first_val` made before training), with the corpus's entropy floor when known.
pub fn write_loss_plot(
    path: &Path,
    title: &str,
    records: &[Record],
    first_val: (u64, f64),
    floor: Option<f64>,
) -> std::io::Result<()> {
    let train = records.iter().map(|r| (r.step as f64, r.loss)).collect();
    let mut val = vec![(first_val.0 as f64, first_val.1)];
    val.extend(
        records
            .iter()
            .filter(|r| r.step > first_val.0)
            .filter_map(|r| r.val_loss.map(|v| (r.step as f64, v))),
    );
    let mut series = vec![
        Series {
            name: "train".into(),
            points: train,
        },
        Series {
            name: "validation".into(),
            points: val,
        },
    ];
    if let Some(f) = floor {
        let last = records.last().map_or(1.0, |r| r.step as f64);
        series.push(Series {
            name: "entropy floor".into(),
            points: vec![(0.0, f), (last, f)],
        });
    }
    let plot = Plot {
        title: title.into(),
        x_label: "step".into(),
        y_label: "loss (nats per token)".into(),
        series,
        log_y: false,
    };
    plot.write_png(path)
}
