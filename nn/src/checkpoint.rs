//! Checkpoints as safetensors files (the format the reference PyTorch code exports), written
//! atomically (a temporary file beside the target, then a rename).
//!
//! Loading into a [`ParamStore`] checks every name, shape and dtype against the model and
//! reports everything that is missing, extra or mismatched in one error. A leading
//! `backbone.` on every name (the reference's training checkpoints) is stripped. Float tensors
//! of another float dtype (say a bf16 export into an f32 model) are converted; any other
//! dtype difference is a mismatch.

use crate::params::ParamStore;
use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use tensor::{DType, Device, Error, Result, Tensor};

const OP: &str = "checkpoint";

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::msg(OP, format!("{}: {msg}", path.display()))
}

/// One tensor's bytes, as the safetensors writer wants them.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_bytes(t: &Tensor) -> Result<Bytes> {
    fn le<T: Copy, const N: usize>(v: Vec<T>, f: fn(T) -> [u8; N]) -> Vec<u8> {
        v.into_iter().flat_map(f).collect()
    }
    let (dtype, data) = match t.dtype() {
        DType::F32 => (Dtype::F32, le(t.to_vec::<f32>()?, f32::to_le_bytes)),
        DType::F64 => (Dtype::F64, le(t.to_vec::<f64>()?, f64::to_le_bytes)),
        DType::BF16 => (Dtype::BF16, le(t.to_vec::<bf16>()?, bf16::to_le_bytes)),
        DType::F16 => (Dtype::F16, le(t.to_vec::<f16>()?, f16::to_le_bytes)),
        DType::U32 => (Dtype::U32, le(t.to_vec::<u32>()?, u32::to_le_bytes)),
        DType::U8 => (Dtype::U8, t.to_vec::<u8>()?),
    };
    Ok(Bytes {
        dtype,
        shape: t.dims().to_vec(),
        data,
    })
}

fn from_bytes(dtype: Dtype, shape: &[usize], data: &[u8]) -> std::result::Result<Tensor, String> {
    fn read<T: tensor::WithDType, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N bytes")))
            .collect()
    }
    let dev = Device::Cpu;
    let t = match dtype {
        Dtype::F32 => Tensor::from_vec(read(data, f32::from_le_bytes), shape.to_vec(), dev),
        Dtype::F64 => Tensor::from_vec(read(data, f64::from_le_bytes), shape.to_vec(), dev),
        Dtype::BF16 => Tensor::from_vec(read(data, bf16::from_le_bytes), shape.to_vec(), dev),
        Dtype::F16 => Tensor::from_vec(read(data, f16::from_le_bytes), shape.to_vec(), dev),
        Dtype::U32 => Tensor::from_vec(read(data, u32::from_le_bytes), shape.to_vec(), dev),
        Dtype::U8 => Tensor::from_vec(data.to_vec(), shape.to_vec(), dev),
        other => return Err(format!("dtype {other:?} is not supported")),
    };
    t.map_err(|e| e.to_string())
}

/// Writes the tensors (with optional string metadata) to `path`, atomically.
pub fn save<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(&str, Bytes)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, to_bytes(t)?)))
        .collect::<Result<_>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(bytes.iter().map(|(n, b)| (*n, b)), metadata, &tmp)
        .map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        err(
            path,
            format!("could not move the finished file into place: {e}"),
        )
    })
}

/// The named tensors of a file, and its metadata.
pub type NamedTensors = (Vec<(String, Tensor)>, HashMap<String, String>);

/// Reads every tensor of a safetensors file (on the CPU), and its metadata.
pub fn load(path: &Path) -> Result<NamedTensors> {
    let buffer = std::fs::read(path).map_err(|e| err(path, e))?;
    let file = SafeTensors::deserialize(&buffer)
        .map_err(|e| err(path, format!("not a valid safetensors file ({e})")))?;
    let (_, meta) = SafeTensors::read_metadata(&buffer).map_err(|e| err(path, e))?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        let t = from_bytes(view.dtype(), view.shape(), view.data())
            .map_err(|e| err(path, format!("tensor '{name}': {e}")))?;
        out.push((name, t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Saves every parameter of the store under its name.
pub fn save_store(
    path: &Path,
    store: &ParamStore,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    save(path, store.iter().map(|(n, t)| (n.as_str(), t)), metadata)
}

/// Loads a checkpoint into the store, replacing every parameter. Fails, changing nothing, if
/// any name is missing or extra or any shape or dtype differs; the error lists all of them.
pub fn load_into(path: &Path, store: &mut ParamStore) -> Result<HashMap<String, String>> {
    let (tensors, meta) = load(path)?;
    let strip = !tensors.is_empty() && tensors.iter().all(|(n, _)| n.starts_with("backbone."));
    let mut found: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(n, t)| {
            (
                if strip {
                    n["backbone.".len()..].to_string()
                } else {
                    n
                },
                t,
            )
        })
        .collect();
    let (mut missing, mut mismatched, mut ready) = (vec![], vec![], vec![]);
    for (name, want) in store.iter() {
        let Some(got) = found.remove(name) else {
            missing.push(name.clone());
            continue;
        };
        let floats = got.dtype().is_float() && want.dtype().is_float();
        if got.shape() != want.shape() || (got.dtype() != want.dtype() && !floats) {
            mismatched.push(format!(
                "{name}: file has {:?} {:?}, model wants {:?} {:?}",
                got.shape(),
                got.dtype(),
                want.shape(),
                want.dtype()
            ));
            continue;
        }
        ready.push((
            name.clone(),
            got.to_dtype(want.dtype())?.to_device(want.device())?,
        ));
    }
    let mut extra: Vec<String> = found.into_keys().collect();
    extra.sort();
    if !(missing.is_empty() && mismatched.is_empty() && extra.is_empty()) {
        let mut msg = String::from("does not fit this model:");
        for (what, list) in [
            ("missing", &missing),
            ("unexpected", &extra),
            ("mismatched", &mismatched),
        ] {
            if !list.is_empty() {
                msg += &format!("\n  {what} ({}): {}", list.len(), list.join(", "));
            }
        }
        return Err(err(path, msg));
    }
    for (name, t) in ready {
        store.set(&name, t)?;
    }
    Ok(meta)
}
