//! Launcher for `kernels/sample.cu`: one Gumbel-max draw per row of F32 or BF16
//! log-probabilities, U32 tokens out.

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::{Result, Tensor};
use cudarc::driver::PushKernelArg;

/// Tokens [rows] for contiguous log-probabilities [rows, cols].
pub fn gumbel_argmax(lp: &Tensor, rows: usize, cols: usize, seed: u64) -> Result<Tensor> {
    let name = "gumbel_argmax";
    launch::count(name, lp.shape())?;
    let s = launch::storage(name, lp)?;
    let sfx = match &s.data {
        CudaData::F32(_) | CudaData::BF16(_) => launch::suffix(&s.data),
        other => return Err(launch::unsupported(name, other, "F32 or BF16")),
    };
    let (stream, f) = launch::kernel(s.ordinal, Source::Sample, &format!("gumbel_argmax_{sfx}"))?;
    let mut out = launch::alloc::<u32>(name, &stream, rows)?;
    if rows > 0 {
        let (cols, rows) = (cols as u32, rows as u32);
        let mut b = stream.launch_builder(&f);
        b.arg(&cols).arg(&seed);
        match &s.data {
            CudaData::F32(v) => b.arg(v),
            CudaData::BF16(v) => b.arg(v),
            _ => unreachable!("dtype checked above"),
        };
        b.arg(&mut out);
        // SAFETY: matches `gumbel_argmax_<T>(unsigned, unsigned long long, const T*, unsigned*)`,
        // launched with exactly `launch::BLOCK` = 256 threads, the size of its shared arrays.
        unsafe { b.launch(launch::rows_config(rows)) }.map_err(launch::driver_err(name))?;
    }
    Ok(launch::tensor(CudaData::U32(out), s.ordinal, [rows]))
}
