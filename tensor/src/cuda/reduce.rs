//! Launchers for `kernels/reduce.cu` and `kernels/softmax.cu`: reductions over any dim (the
//! last one block per row, another in place by chunked column folds), argmax over a dim (moved
//! last first when it is not), softmax / log-softmax over the last dim and their backward.
//! F32 and BF16.

use super::elementwise::for_floats;
use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::op::ReduceOp;
use crate::{Result, Tensor};
use cudarc::driver::PushKernelArg;

/// `x` with dim `d` moved last, contiguous: a [rows, cols] matrix whose rows are reduced (a
/// scalar is one row of one column).
fn dim_last(x: &Tensor, d: usize) -> Result<(Tensor, u32, u32)> {
    let rank = x.rank();
    let x = if d + 1 >= rank {
        x.contiguous()?
    } else {
        let mut perm: Vec<usize> = (0..rank).filter(|&i| i != d).collect();
        perm.push(d);
        x.permute(&perm)?.contiguous()?
    };
    let cols = x.dims().last().copied().unwrap_or(1);
    let rows: usize = x.dims()[..x.rank().saturating_sub(1)].iter().product();
    let fit = |v: usize| u32::try_from(v).map_err(|_| crate::Error::shape("reduce", "too large"));
    launch::count("reduce", x.shape())?; // so rows·cols below cannot overflow
    Ok((x, fit(rows)?, fit(cols)?))
}

/// The dims of `x` without dim `d`.
fn without(x: &Tensor, d: usize) -> Vec<usize> {
    let mut dims = x.dims().to_vec();
    dims.remove(d);
    dims
}

/// Sum, max or min over dim `d`; the result drops that dim.
pub fn reduce(x: &Tensor, d: usize, op: ReduceOp) -> Result<Tensor> {
    // In place unless the columns would not fit the launch grid's y dimension.
    let inner = x.shape().split_at_dim(d).2;
    if d + 1 < x.rank() && inner.div_ceil(launch::BLOCK as usize) <= 65_535 {
        return reduce_mid(x, d, op);
    }
    let name = "reduce";
    let (xl, rows, cols) = dim_last(x, d)?;
    if rows <= LONG_ROWS_MAX && cols >= 2 * SEGMENT {
        return reduce_long_rows(&xl, rows, cols, op, without(x, d));
    }
    let s = launch::storage(name, &xl)?;
    let data = for_floats!(name, &s.data, |v, sfx| {
        let kernel = format!("reduce_last_{sfx}");
        let (stream, f) = launch::kernel(s.ordinal, Source::Reduce, &kernel)?;
        let mut out = launch::alloc(name, &stream, rows as usize)?;
        if rows > 0 {
            let code = op as i32;
            let mut b = stream.launch_builder(&f);
            b.arg(&code).arg(&cols).arg(v).arg(&mut out);
            // SAFETY: matches `reduce_last_<T>(int, unsigned, const T*, T*)`: v holds
            // rows·cols elements, out one per row (one block per row).
            unsafe { b.launch(launch::rows_config(name, rows)?) }
                .map_err(launch::driver_err(name))?;
        }
        out
    });
    Ok(launch::tensor(data, s.ordinal, without(x, d)))
}

/// Rows at most this many, and at least 2·[`SEGMENT`] long, are reduced in segments: one block
/// per row would leave most of the GPU idle (a full reduction is a single row).
const LONG_ROWS_MAX: u32 = 512;
/// Columns per block of a segmented row (16 per thread).
const SEGMENT: u32 = 4096;

/// `reduce` over the last dim of contiguous x [rows, cols] for few long rows: each row's
/// segments are folded by their own blocks into f32 partials, then a block per row folds those.
fn reduce_long_rows(
    x: &Tensor,
    rows: u32,
    cols: u32,
    op: ReduceOp,
    out_dims: Vec<usize>,
) -> Result<Tensor> {
    let name = "reduce";
    // At most 65 535 segments per row (the grid's y limit).
    let seg = SEGMENT.max(cols.div_ceil(65_535));
    let segments = cols.div_ceil(seg);
    let s = launch::storage(name, x)?;
    let code = op as i32;
    let data = for_floats!(name, &s.data, |v, sfx| {
        let kernel = |k: &str| launch::kernel(s.ordinal, Source::Reduce, &format!("{k}_{sfx}"));
        let (stream, f_part) = kernel("reduce_last_partials")?;
        let (_, f_finish) = kernel("reduce_last_finish")?;
        let mut part = launch::alloc::<f32>(name, &stream, (rows * segments) as usize)?;
        let mut out = launch::alloc(name, &stream, rows as usize)?;
        if rows > 0 {
            let cfg = launch::grid(name, rows, segments)?;
            let mut b = stream.launch_builder(&f_part);
            b.arg(&code).arg(&cols).arg(&seg).arg(v).arg(&mut part);
            // SAFETY: matches `reduce_last_partials_<T>(int, unsigned cols, unsigned seg,
            // const T*, float*)`; part holds rows·segments values, one per block.
            unsafe { b.launch(cfg) }.map_err(launch::driver_err(name))?;
            let mut b = stream.launch_builder(&f_finish);
            b.arg(&code).arg(&segments).arg(&part).arg(&mut out);
            // SAFETY: matches `reduce_last_finish_<T>(int, unsigned cols, const float*, T*)`
            // over part [rows, segments]; one block per row.
            unsafe { b.launch(launch::rows_config(name, rows)?) }
                .map_err(launch::driver_err(name))?;
        }
        out
    });
    Ok(launch::tensor(data, s.ordinal, out_dims))
}

/// `reduce` over a dim that is not the last, in place: x viewed as [outer, size, inner], the
/// chunked column folds of `kernels/reduce.cu` (no transposed copy of x).
fn reduce_mid(x: &Tensor, d: usize, op: ReduceOp) -> Result<Tensor> {
    let name = "reduce";
    let x = x.contiguous()?;
    launch::count(name, x.shape())?;
    let (outer, size, inner) = x.shape().split_at_dim(d);
    let (size, inner) = (size as u32, inner as u32);
    let chunk = launch::SUM_CHUNK_ROWS;
    let chunks = size.div_ceil(chunk).max(1);
    // With inner = 0 x is empty whatever `outer` is, so these products are checked.
    let too_big = || crate::Error::shape(name, format!("{:?} is too large", x.shape()));
    let outer = u32::try_from(outer).map_err(|_| too_big())?;
    let blocks = outer.checked_mul(chunks).ok_or_else(too_big)?;
    let n = outer.checked_mul(inner).ok_or_else(too_big)?;
    let s = launch::storage(name, &x)?;
    let code = op as i32;
    let data = for_floats!(name, &s.data, |v, sfx| {
        let kernel = |k: &str| launch::kernel(s.ordinal, Source::Reduce, &format!("{k}_{sfx}"));
        let (stream, f_part) = kernel("reduce_mid_partials")?;
        let (_, f_finish) = kernel("reduce_mid_finish")?;
        let mut part = launch::alloc::<f32>(name, &stream, (blocks * inner) as usize)?;
        let mut out = launch::alloc(name, &stream, n as usize)?;
        if n > 0 {
            let mut b = stream.launch_builder(&f_part);
            b.arg(&code).arg(&size).arg(&inner).arg(&chunk).arg(&chunks);
            b.arg(v).arg(&mut part);
            // SAFETY: matches `reduce_mid_partials_<T>(int, unsigned size, unsigned inner,
            // unsigned chunk, unsigned chunks, const T*, float*)`; part holds blocks·inner.
            unsafe { b.launch(launch::chunks_config(name, blocks, inner)?) }
                .map_err(launch::driver_err(name))?;
            let mut b = stream.launch_builder(&f_finish);
            b.arg(&code)
                .arg(&n)
                .arg(&inner)
                .arg(&chunks)
                .arg(&part)
                .arg(&mut out);
            // SAFETY: matches `reduce_mid_finish_<T>(int, unsigned n, unsigned inner, unsigned
            // chunks, const float*, T*)`; out holds n = outer·inner elements.
            unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
        }
        out
    });
    Ok(launch::tensor(data, s.ordinal, without(&x, d)))
}

/// Index (U32) of the largest entry along dim `d` (first on ties, NaN largest); drops dim `d`.
pub fn argmax(x: &Tensor, d: usize) -> Result<Tensor> {
    let name = "argmax";
    let (xl, rows, cols) = dim_last(x, d)?;
    let s = launch::storage(name, &xl)?;
    let sfx = launch::float_suffix(name, &s.data)?;
    let (stream, f) = launch::kernel(s.ordinal, Source::Reduce, &format!("argmax_last_{sfx}"))?;
    let mut out = launch::alloc::<u32>(name, &stream, rows as usize)?;
    if rows > 0 {
        let mut b = stream.launch_builder(&f);
        b.arg(&cols);
        launch::arg_data(&mut b, &s.data);
        b.arg(&mut out);
        // SAFETY: matches `argmax_last_<T>(unsigned, const T*, unsigned*)`, launched with
        // exactly `launch::BLOCK` = 256 threads, the size of its shared arrays.
        unsafe { b.launch(launch::rows_config(name, rows)?) }.map_err(launch::driver_err(name))?;
    }
    Ok(launch::tensor(CudaData::U32(out), s.ordinal, without(x, d)))
}

/// Softmax (or log-softmax) over the last dim.
pub fn softmax(x: &Tensor, log: bool) -> Result<Tensor> {
    let name = if log { "log_softmax" } else { "softmax" };
    let (xl, rows, cols) = dim_last(x, x.rank().saturating_sub(1))?;
    let s = launch::storage(name, &xl)?;
    let data = for_floats!(name, &s.data, |v, sfx| {
        let (stream, f) = launch::kernel(s.ordinal, Source::Softmax, &format!("softmax_{sfx}"))?;
        let mut out = launch::alloc(name, &stream, (rows * cols) as usize)?;
        if rows > 0 {
            let log_out = log as i32;
            let mut b = stream.launch_builder(&f);
            b.arg(&log_out).arg(&cols).arg(v).arg(&mut out);
            // SAFETY: matches `softmax_<T>(int, unsigned, const T*, T*)`; rows·cols elements.
            unsafe { b.launch(launch::rows_config(name, rows)?) }
                .map_err(launch::driver_err(name))?;
        }
        out
    });
    Ok(launch::tensor(data, s.ordinal, x.shape()))
}

/// The backward of softmax / log-softmax from the forward output `y` and `dy` (same shape).
pub fn softmax_backward(y: &Tensor, dy: &Tensor, log: bool) -> Result<Tensor> {
    let name = "softmax_backward";
    let last = y.rank().saturating_sub(1);
    let (yl, rows, cols) = dim_last(y, last)?;
    let (dl, _, _) = dim_last(dy, last)?;
    let (sy, sd) = (launch::storage(name, &yl)?, launch::storage(name, &dl)?);
    let o = sy.ordinal;
    let run = |sfx: &str| launch::kernel(o, Source::Softmax, &format!("softmax_backward_{sfx}"));
    let log_out = log as i32;
    let cfg = launch::rows_config(name, rows)?;
    let data = match (&sy.data, &sd.data) {
        (CudaData::F32(yv), CudaData::F32(dv)) => {
            let (stream, f) = run("f32")?;
            let mut out = launch::alloc::<f32>(name, &stream, (rows * cols) as usize)?;
            if rows > 0 {
                let mut b = stream.launch_builder(&f);
                b.arg(&log_out).arg(&cols).arg(yv).arg(dv).arg(&mut out);
                // SAFETY: matches `softmax_backward_f32(int, unsigned, const float*×2, float*)`.
                unsafe { b.launch(cfg) }.map_err(launch::driver_err(name))?;
            }
            CudaData::F32(out)
        }
        (CudaData::BF16(yv), CudaData::BF16(dv)) => {
            let (stream, f) = run("bf16")?;
            let mut out = launch::alloc::<half::bf16>(name, &stream, (rows * cols) as usize)?;
            if rows > 0 {
                let mut b = stream.launch_builder(&f);
                b.arg(&log_out).arg(&cols).arg(yv).arg(dv).arg(&mut out);
                // SAFETY: matches `softmax_backward_bf16(int, unsigned, const bf16*×2, bf16*)`.
                unsafe { b.launch(cfg) }.map_err(launch::driver_err(name))?;
            }
            CudaData::BF16(out)
        }
        (other, _) => {
            return Err(launch::unsupported(
                name,
                other,
                "y and dy both F32 or BF16",
            ))
        }
    };
    Ok(launch::tensor(data, o, y.shape()))
}
