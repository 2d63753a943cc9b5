//! Launcher for `kernels/rope.cu`: RoPE at gathered positions on x [B, N, H, d] (any strides),
//! F32 or BF16, with F32 cos / sin tables [B, N, d/2].

use super::kernels::Source;
use super::launch::{self, Strided};
use super::CudaData;
use crate::{Error, Result, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

/// The rotation of `x` by its tokens' angles (by minus them when `inverse`); contiguous output.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, inverse: bool) -> Result<Tensor> {
    let name = if inverse { "rope_backward" } else { "rope" };
    let &[b, n, h, d] = x.dims() else {
        return Err(Error::shape(
            name,
            format!("x must be [B, N, H, d], got {:?}", x.shape()),
        ));
    };
    let sx = Strided::of(name, x.layout())?;
    // `Strided::of` turns a contiguous layout into rank 1; the kernel wants the four strides.
    let sx = if sx.rank == 1 {
        let mut full = sx;
        full.rank = 4;
        full.dims[..4].copy_from_slice(&[b as u32, n as u32, h as u32, d as u32]);
        full.strides[..4].copy_from_slice(&[(n * h * d) as u32, (h * d) as u32, d as u32, 1]);
        full
    } else {
        sx
    };
    let (cos, sin) = (cos.contiguous()?, sin.contiguous()?);
    let (xs, cs, ss) = (
        launch::storage(name, x)?,
        launch::storage(name, &cos)?,
        launch::storage(name, &sin)?,
    );
    let (CudaData::F32(c), CudaData::F32(s)) = (&cs.data, &ss.data) else {
        return Err(Error::dtype(
            name,
            "on CUDA the cos and sin tables must be F32",
        ));
    };
    let pairs = launch::count(name, &crate::Shape::from([b, n, h, d / 2]))?;
    let dims = (pairs, n as u32, h as u32, (d / 2) as u32);
    let o = xs.ordinal;
    let inv = inverse as i32;
    let data = match &xs.data {
        CudaData::F32(v) => CudaData::F32(run(name, o, "f32", inv, dims, (v, sx), (c, s))?),
        CudaData::BF16(v) => CudaData::BF16(run(name, o, "bf16", inv, dims, (v, sx), (c, s))?),
        other => return Err(launch::unsupported(name, other, "F32 or BF16")),
    };
    Ok(launch::tensor(data, o, [b, n, h, d]))
}

/// Launches `rope_<sfx>`, one thread per rotated pair; returns the contiguous output.
fn run<T: DeviceRepr>(
    name: &'static str,
    ordinal: usize,
    sfx: &str,
    inverse: i32,
    (pairs, tokens, heads, half): (u32, u32, u32, u32),
    (x, sx): (&CudaSlice<T>, Strided),
    (cos, sin): (&CudaSlice<f32>, &CudaSlice<f32>),
) -> Result<CudaSlice<T>> {
    let (stream, f) = launch::kernel(ordinal, Source::Rope, &format!("rope_{sfx}"))?;
    let mut out = launch::alloc(name, &stream, 2 * pairs as usize)?;
    if pairs > 0 {
        let mut b = stream.launch_builder(&f);
        b.arg(&inverse)
            .arg(&pairs)
            .arg(&tokens)
            .arg(&heads)
            .arg(&half);
        b.arg(x).arg(&sx).arg(cos).arg(sin).arg(&mut out);
        // SAFETY: matches `rope_<T>(int inverse, unsigned n, unsigned tokens, unsigned heads,
        // unsigned half, const T* x, Strided sx, const float* cos, const float* sin, T* out)`;
        // the tables hold B·N·half entries (checked by the caller), out 2·pairs.
        unsafe { b.launch(launch::elementwise_config(pairs)) }.map_err(launch::driver_err(name))?;
    }
    Ok(out)
}
