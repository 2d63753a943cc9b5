//! Launchers for `kernels/sample.cu`: one Gumbel-max draw per row of F32 or BF16
//! log-probabilities (U32 tokens out), and F32 or BF16 dropout masks.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::cpu::sample::DropoutNoise;
use crate::{DType, Device, Error, Result, Shape, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// Tokens [rows] for contiguous log-probabilities [rows, cols].
pub fn gumbel_argmax(lp: &Tensor, rows: usize, cols: usize, seed: u64) -> Result<Tensor> {
    let name = "gumbel_argmax";
    launch::count(name, lp.shape())?;
    let s = launch::storage(name, lp)?;
    let sfx = launch::float_suffix(name, &s.data)?;
    let (stream, f) = launch::kernel(s.ordinal, Source::Sample, &format!("gumbel_argmax_{sfx}"))?;
    let mut out = launch::alloc::<u32>(name, &stream, rows)?;
    if rows > 0 {
        let (cols, rows) = (cols as u32, rows as u32);
        let mut b = stream.launch_builder(&f);
        b.arg(&cols).arg(&seed);
        launch::arg_data(&mut b, &s.data);
        b.arg(&mut out);
        // SAFETY: matches `gumbel_argmax_<T>(unsigned, unsigned long long, const T*, unsigned*)`,
        // launched with exactly `launch::BLOCK` = 256 threads, the size of its shared arrays.
        unsafe { b.launch(launch::rows_config(name, rows)?) }.map_err(launch::driver_err(name))?;
    }
    Ok(launch::tensor(CudaData::U32(out), s.ordinal, [rows]))
}

/// The dropout mask of `Tensor::dropout_mask` on GPU `device`.
pub fn dropout_mask(
    shape: &Shape,
    noise: DropoutNoise,
    dtype: DType,
    device: Device,
) -> Result<Tensor> {
    let DropoutNoise { p, key } = noise;
    let scale = (1.0 / (1.0 - p)) as f32; // as the CPU's f32 mask
    let name = "dropout_mask";
    let Device::Cuda(ordinal) = device else {
        return Err(Error::device(
            name,
            format!("expected a CUDA device, got {device}"),
        ));
    };
    let n = launch::count(name, shape)?;
    fn run<T: DeviceRepr>(
        o: usize,
        sfx: &str,
        n: u32,
        p: f64,
        scale: f32,
        key: u64,
    ) -> Result<CudaSlice<T>> {
        let (stream, f) = launch::kernel(o, Source::Sample, &format!("dropout_mask_{sfx}"))?;
        let mut out = launch::alloc::<T>("dropout_mask", &stream, n as usize)?;
        if n > 0 {
            let mut b = stream.launch_builder(&f);
            b.arg(&n).arg(&p).arg(&scale).arg(&key).arg(&mut out);
            // SAFETY: matches `dropout_mask_<T>(unsigned, double, float, unsigned long long,
            // T*)`; out holds n elements.
            unsafe { b.launch(launch::elementwise_config(n)) }
                .map_err(launch::driver_err("dropout_mask"))?;
        }
        Ok(out)
    }
    let data = match dtype {
        DType::F32 => CudaData::F32(run(ordinal, "f32", n, p, scale, key)?),
        DType::BF16 => CudaData::BF16(run(ordinal, "bf16", n, p, scale, key)?),
        other => {
            return Err(Error::dtype(
                name,
                format!("on CUDA expects F32 or BF16, got {other:?}"),
            ))
        }
    };
    Ok(launch::tensor(data, ordinal, shape.clone()))
}
