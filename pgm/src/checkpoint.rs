//! Model checkpoints: a directory with `model.safetensors` (tensor names as in SPEC §4, so the
//! reference implementation's exports load directly) and `config.json` beside it. Both files
//! are written atomically.

use crate::config::{ModelConfig, ModelKind};
use crate::{MdlmNetwork, PgmNetwork};
use nn::ParamStore;
use std::collections::HashMap;
use std::path::Path;
use tensor::{DType, Device, Error, Result, Rng};

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";

/// Either network.
#[allow(clippy::large_enum_variant)] // one per process; boxing would only add indirection
pub enum Model {
    Pgm(PgmNetwork),
    Mdlm(MdlmNetwork),
}

impl Model {
    /// A freshly initialised model of `config` and its parameters.
    pub fn new(
        config: &ModelConfig,
        dtype: DType,
        device: Device,
        seed: u64,
    ) -> Result<(Model, ParamStore)> {
        let mut store = ParamStore::new(dtype, device);
        let mut rng = Rng::seed(seed);
        let model = match config.model {
            ModelKind::Pgm => Model::Pgm(PgmNetwork::new(config, &mut store, &mut rng)?),
            ModelKind::Mdlm => Model::Mdlm(MdlmNetwork::new(config, &mut store, &mut rng)?),
        };
        Ok((model, store))
    }
    pub fn config(&self) -> &ModelConfig {
        match self {
            Model::Pgm(m) => &m.config,
            Model::Mdlm(m) => &m.config,
        }
    }
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::msg("checkpoint", format!("{}: {e}", path.display()))
}

/// Writes `config.json` and `model.safetensors` into `dir` (created if needed).
pub fn save(dir: &Path, config: &ModelConfig, store: &ParamStore) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let cfg_path = dir.join(CONFIG_FILE);
    let tmp = dir.join(format!("{CONFIG_FILE}.tmp"));
    std::fs::write(&tmp, config.to_json()).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, &cfg_path).map_err(|e| io_error(&cfg_path, e))?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    nn::checkpoint::save_store(&dir.join(WEIGHTS_FILE), store, Some(meta))
}

/// Reads a checkpoint directory. With `expect`, a checkpoint of the other model kind is an
/// error that says so. Every tensor name, shape and dtype is checked against the config.
pub fn load(
    dir: &Path,
    expect: Option<ModelKind>,
    dtype: DType,
    device: Device,
) -> Result<(Model, ParamStore)> {
    if !dir.is_dir() {
        return Err(io_error(dir, "no such checkpoint directory"));
    }
    let config = ModelConfig::load(&dir.join(CONFIG_FILE))?;
    if let Some(kind) = expect.filter(|&k| k != config.model) {
        return Err(io_error(
            dir,
            format!(
                "holds a {:?} checkpoint, but a {kind:?} model was asked for",
                config.model
            ),
        ));
    }
    let (model, mut store) = Model::new(&config, dtype, device, 0)?;
    nn::checkpoint::load_into(&dir.join(WEIGHTS_FILE), &mut store)?;
    Ok((model, store))
}
