//! Launchers for `kernels/elementwise.cu`: unary ops and their backward, affine, broadcasting
//! binary ops, comparisons and `where`. Float kernels exist for F32 and BF16 (BF16 computes in
//! f32 and rounds once on store). Op codes are the enums' declaration order in `op.rs`.

use super::kernels::Source;
use super::launch::{self, Strided};
use super::{CudaData, CudaStorage};
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::{Result, Shape, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// Matches `$data` on its F32 / BF16 variant, binding the slice to `$x` and the kernel-name
/// suffix to `$sfx`, and wraps `$body` (a new slice) in the same variant.
macro_rules! for_floats {
    ($op:expr, $data:expr, |$x:ident, $sfx:ident| $body:expr) => {
        match $data {
            CudaData::F32($x) => {
                let $sfx = "f32";
                CudaData::F32($body)
            }
            CudaData::BF16($x) => {
                let $sfx = "bf16";
                CudaData::BF16($body)
            }
            other => return Err(launch::unsupported($op, other, "F32 or BF16")),
        }
    };
}
pub(crate) use for_floats;

/// y = op(x); `x` contiguous with offset 0.
pub fn unary(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let name = op.name();
    let s = launch::storage(name, x)?;
    let n = launch::count(name, x.shape())?;
    let data = for_floats!(name, &s.data, |v, sfx| {
        let (stream, f) = launch::kernel(s.ordinal, Source::Elementwise, &format!("unary_{sfx}"))?;
        let mut out = launch::alloc(name, &stream, n as usize)?;
        let code = op as i32;
        let mut b = stream.launch_builder(&f);
        b.arg(&code).arg(&n).arg(v).arg(&mut out);
        // SAFETY: argument types match `unary_<T>(int, unsigned, const T*, T*)`; n elements.
        unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
        out
    });
    Ok(launch::tensor(data, s.ordinal, x.shape()))
}

/// dx = dy · op'(x) given x, y = op(x) and dy, all contiguous with offset 0 and of one dtype.
pub fn unary_backward(x: &Tensor, y: &Tensor, dy: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let name = "unary_backward";
    let (sx, sy, sd) = (
        launch::storage(name, x)?,
        launch::storage(name, y)?,
        launch::storage(name, dy)?,
    );
    let n = launch::count(name, x.shape())?;
    fn run<T: DeviceRepr>(
        name: &'static str,
        ordinal: usize,
        sfx: &str,
        op: UnaryOp,
        n: u32,
        (x, y, dy): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
    ) -> Result<CudaSlice<T>> {
        let kernel = format!("unary_backward_{sfx}");
        let (stream, f) = launch::kernel(ordinal, Source::Elementwise, &kernel)?;
        let mut out = launch::alloc(name, &stream, n as usize)?;
        let code = op as i32;
        let mut b = stream.launch_builder(&f);
        b.arg(&code).arg(&n).arg(x).arg(y).arg(dy).arg(&mut out);
        // SAFETY: matches `unary_backward_<T>(int, unsigned, const T*×3, T*)`; n elements each.
        unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
        Ok(out)
    }
    let data = match (&sx.data, &sy.data, &sd.data) {
        (CudaData::F32(a), CudaData::F32(b), CudaData::F32(c)) => {
            CudaData::F32(run(name, sx.ordinal, "f32", op, n, (a, b, c))?)
        }
        (CudaData::BF16(a), CudaData::BF16(b), CudaData::BF16(c)) => {
            CudaData::BF16(run(name, sx.ordinal, "bf16", op, n, (a, b, c))?)
        }
        (other, _, _) => {
            return Err(launch::unsupported(
                name,
                other,
                "x, y, dy all F32 or all BF16",
            ))
        }
    };
    Ok(launch::tensor(data, sx.ordinal, x.shape()))
}

/// x · mul + add; `x` contiguous with offset 0.
pub fn affine(x: &Tensor, mul: f64, add: f64) -> Result<Tensor> {
    let name = "affine";
    let s = launch::storage(name, x)?;
    let n = launch::count(name, x.shape())?;
    let (mul, add) = (mul as f32, add as f32);
    let data = for_floats!(name, &s.data, |v, sfx| {
        let (stream, f) = launch::kernel(s.ordinal, Source::Elementwise, &format!("affine_{sfx}"))?;
        let mut out = launch::alloc(name, &stream, n as usize)?;
        let mut b = stream.launch_builder(&f);
        b.arg(&n).arg(v).arg(&mul).arg(&add).arg(&mut out);
        // SAFETY: matches `affine_<T>(unsigned, const T*, float, float, T*)`.
        unsafe { b.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
        out
    });
    Ok(launch::tensor(data, s.ordinal, x.shape()))
}

/// Launches a two-input kernel `kernel(int code, unsigned n, const T* a, Strided sa,
/// const T* b, Strided sb, O* out)` (the binary ops and the comparisons) and returns `out`.
#[allow(clippy::too_many_arguments)]
fn run<T: DeviceRepr, O: DeviceRepr>(
    name: &'static str,
    ordinal: usize,
    kernel: &str,
    code: i32,
    n: u32,
    (a, sa): (&CudaSlice<T>, Strided),
    (b, sb): (&CudaSlice<T>, Strided),
) -> Result<CudaSlice<O>> {
    let (stream, f) = launch::kernel(ordinal, Source::Elementwise, kernel)?;
    let mut out = launch::alloc(name, &stream, n as usize)?;
    let mut bld = stream.launch_builder(&f);
    bld.arg(&code)
        .arg(&n)
        .arg(a)
        .arg(&sa)
        .arg(b)
        .arg(&sb)
        .arg(&mut out);
    // SAFETY: `kernel` has the signature above (binary_<T> with O = T, cmp_<T> with O = u8);
    // `Strided::of` checked that every offset the layouts reach is in bounds of 32 bits.
    unsafe { bld.launch(launch::elementwise_config(n)) }.map_err(launch::driver_err(name))?;
    Ok(out)
}

/// The storages of `a` and `b` with their layouts broadcast to `shape`, and the element count.
#[allow(clippy::type_complexity)]
fn two_operands<'t>(
    name: &'static str,
    a: &'t Tensor,
    b: &'t Tensor,
    shape: &Shape,
) -> Result<((&'t CudaStorage, Strided), (&'t CudaStorage, Strided), u32)> {
    let strided = |t: &Tensor| Strided::of(name, &t.layout().broadcast_as(shape)?);
    Ok((
        (launch::storage(name, a)?, strided(a)?),
        (launch::storage(name, b)?, strided(b)?),
        launch::count(name, shape)?,
    ))
}

/// a op b, both read through their layouts broadcast to `shape` (any strides and offsets).
pub fn binary(a: &Tensor, b: &Tensor, shape: &Shape, op: BinaryOp) -> Result<Tensor> {
    let name = op.name();
    let ((xa, sa), (xb, sb), n) = two_operands(name, a, b, shape)?;
    let data = match (&xa.data, &xb.data) {
        (CudaData::F32(x), CudaData::F32(y)) => CudaData::F32(run(
            name,
            xa.ordinal,
            "binary_f32",
            op as i32,
            n,
            (x, sa),
            (y, sb),
        )?),
        (CudaData::BF16(x), CudaData::BF16(y)) => CudaData::BF16(run(
            name,
            xa.ordinal,
            "binary_bf16",
            op as i32,
            n,
            (x, sa),
            (y, sb),
        )?),
        (other, _) => return Err(launch::unsupported(name, other, "two F32 or two BF16")),
    };
    Ok(launch::tensor(data, xa.ordinal, shape.clone()))
}

/// (a op b) as a U8 mask, with broadcasting; F32, F64, BF16, U32 or U8 operands of one dtype.
pub fn cmp(a: &Tensor, b: &Tensor, shape: &Shape, op: CmpOp) -> Result<Tensor> {
    let name = "cmp";
    let ((xa, sa), (xb, sb), n) = two_operands(name, a, b, shape)?;
    let (o, code) = (xa.ordinal, op as i32);
    let out = match (&xa.data, &xb.data) {
        (CudaData::F32(x), CudaData::F32(y)) => run(name, o, "cmp_f32", code, n, (x, sa), (y, sb))?,
        (CudaData::F64(x), CudaData::F64(y)) => run(name, o, "cmp_f64", code, n, (x, sa), (y, sb))?,
        (CudaData::BF16(x), CudaData::BF16(y)) => {
            run(name, o, "cmp_bf16", code, n, (x, sa), (y, sb))?
        }
        (CudaData::U32(x), CudaData::U32(y)) => run(name, o, "cmp_u32", code, n, (x, sa), (y, sb))?,
        (CudaData::U8(x), CudaData::U8(y)) => run(name, o, "cmp_u8", code, n, (x, sa), (y, sb))?,
        (other, _) => {
            return Err(launch::unsupported(
                name,
                other,
                "two of F32, F64, BF16, U32 or U8",
            ))
        }
    };
    Ok(launch::tensor(CudaData::U8(out), o, shape.clone()))
}

/// cond ? a : b elementwise; `cond` is U8, all three broadcast to `shape`.
pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor, shape: &Shape) -> Result<Tensor> {
    let name = "where_cond";
    let lay =
        |t: &Tensor| -> Result<Strided> { Strided::of(name, &t.layout().broadcast_as(shape)?) };
    let (sc, sa, sb) = (lay(cond)?, lay(a)?, lay(b)?);
    let (xc, xa, xb) = (
        launch::storage(name, cond)?,
        launch::storage(name, a)?,
        launch::storage(name, b)?,
    );
    let CudaData::U8(c) = &xc.data else {
        return Err(launch::unsupported(name, &xc.data, "a U8 condition"));
    };
    let n = launch::count(name, shape)?;
    fn run<T: DeviceRepr>(
        ordinal: usize,
        sfx: &str,
        n: u32,
        (c, sc): (&CudaSlice<u8>, Strided),
        (a, sa): (&CudaSlice<T>, Strided),
        (b, sb): (&CudaSlice<T>, Strided),
    ) -> Result<CudaSlice<T>> {
        let (stream, f) = launch::kernel(ordinal, Source::Elementwise, &format!("where_{sfx}"))?;
        let mut out = launch::alloc("where_cond", &stream, n as usize)?;
        let mut bld = stream.launch_builder(&f);
        bld.arg(&n)
            .arg(c)
            .arg(&sc)
            .arg(a)
            .arg(&sa)
            .arg(b)
            .arg(&sb)
            .arg(&mut out);
        // SAFETY: matches `where_<T>(unsigned, const u8*, Strided, const T*, Strided, const T*,
        // Strided, T*)`.
        unsafe { bld.launch(launch::elementwise_config(n)) }
            .map_err(launch::driver_err("where_cond"))?;
        Ok(out)
    }
    let o = xa.ordinal;
    let data = match (&xa.data, &xb.data) {
        (CudaData::F32(x), CudaData::F32(y)) => {
            CudaData::F32(run(o, "f32", n, (c, sc), (x, sa), (y, sb))?)
        }
        (CudaData::BF16(x), CudaData::BF16(y)) => {
            CudaData::BF16(run(o, "bf16", n, (c, sc), (x, sa), (y, sb))?)
        }
        (other, _) => return Err(launch::unsupported(name, other, "two F32 or two BF16")),
    };
    Ok(launch::tensor(data, o, shape.clone()))
}
