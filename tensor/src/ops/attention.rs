//! Partition attention: attention restricted to the (query, key) pairs a [`GroupRule`] allows,
//! computed only on those pairs by the gathered CPU kernel (`cpu::attention`); on CUDA, densely
//! with the disallowed pairs masked (`cuda::attention`).

use super::same_device;
use crate::cpu::attention::{self as kern, AttnDims, GroupRule, HeadsLayout};
use crate::cpu::CpuStorage;
use crate::{bail_shape, Error, Result, Tensor};

/// The checked operands of a partition-attention call.
struct Checked {
    dims: AttnDims,
    lq: HeadsLayout,
    lk: HeadsLayout,
    lv: HeadsLayout,
    q_groups: Tensor,
    k_groups: Tensor,
}

/// Checks shapes, dtypes and devices: q [B, Nq, H, d], k and v [B, Nk, H, d] of one float
/// dtype, q_groups [B, Nq] and k_groups [B, Nk] of U8.
fn check(
    name: &'static str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    q_groups: &Tensor,
    k_groups: &Tensor,
) -> Result<Checked> {
    same_device(name, &[q, k, v, q_groups, k_groups])?;
    let (Some(lq), Some(lk), Some(lv)) = (
        HeadsLayout::of(q.layout()),
        HeadsLayout::of(k.layout()),
        HeadsLayout::of(v.layout()),
    ) else {
        bail_shape!(
            name,
            "q, k, v must be [B, N, H, d], got {:?}, {:?}, {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        );
    };
    let [b, nq, h, d] = lq.dims;
    let nk = lk.dims[1];
    if lk.dims != [b, nk, h, d] || lv.dims != lk.dims {
        bail_shape!(
            name,
            "q [B, Nq, H, d], k and v [B, Nk, H, d] disagree: {:?}, {:?}, {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        );
    }
    if q_groups.dims() != [b, nq] || k_groups.dims() != [b, nk] {
        bail_shape!(
            name,
            "q {:?} and k {:?} need groups [{b}, {nq}] and [{b}, {nk}], got {:?} and {:?}",
            q.shape(),
            k.shape(),
            q_groups.shape(),
            k_groups.shape()
        );
    }
    if q_groups.dtype() != crate::DType::U8 || k_groups.dtype() != crate::DType::U8 {
        return Err(Error::dtype(
            name,
            format!(
                "groups must be U8, got {:?} and {:?}",
                q_groups.dtype(),
                k_groups.dtype()
            ),
        ));
    }
    if q.dtype() != k.dtype() || q.dtype() != v.dtype() {
        return Err(Error::dtype(
            name,
            format!(
                "q, k, v must share a dtype, got {:?}, {:?}, {:?}",
                q.dtype(),
                k.dtype(),
                v.dtype()
            ),
        ));
    }
    Ok(Checked {
        dims: AttnDims {
            batch: b,
            nq,
            nk,
            heads: h,
            head_dim: d,
        },
        lq,
        lk,
        lv,
        q_groups: q_groups.contiguous()?,
        k_groups: k_groups.contiguous()?,
    })
}

fn u8s<'a>(name: &'static str, t: &'a Tensor) -> Result<&'a [u8]> {
    match t.cpu(name)? {
        CpuStorage::U8(v) => Ok(v),
        other => Err(Error::dtype(
            name,
            format!("groups must be U8, got {:?}", other.dtype()),
        )),
    }
}

impl Tensor {
    /// Attention of queries `self` [B, Nq, H, d] over keys `k` and values `v` [B, Nk, H, d]
    /// (any strides, e.g. views of a Linear's output reshaped to heads), restricted to the pairs
    /// `rule` allows given `q_groups` [B, Nq] and `k_groups` [B, Nk] (U8; [`PAD_GROUP`](crate::PAD_GROUP)
    /// = 255 marks pads, which never attend and are never attended to):
    /// out_i = Σ_j softmax_j(q_i·k_j·scale)·v_j over the allowed j only. A query with no allowed
    /// key outputs zeros.
    ///
    /// Returns `(out, lse)`: out contiguous [B, Nq, H, d] (so reshaping to [B, Nq, H·d] is free)
    /// and the log-sum-exp of each query's scaled scores, [B, H, Nq] (−∞ for a query with no
    /// allowed key), which [`Tensor::partition_attention_backward`] needs. F32 or F64 on the
    /// CPU, F32 or BF16 on CUDA.
    pub fn partition_attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        q_groups: &Tensor,
        k_groups: &Tensor,
        rule: GroupRule,
        scale: f64,
    ) -> Result<(Tensor, Tensor)> {
        let name = "partition_attention";
        let c = check(name, self, k, v, q_groups, k_groups)?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::attention::forward(self, k, v, q_groups, k_groups, rule, scale);
        }
        let (qg, kg) = (u8s(name, &c.q_groups)?, u8s(name, &c.k_groups)?);
        let d = c.dims;
        let (out, lse) = match (self.cpu(name)?, k.cpu(name)?, v.cpu(name)?) {
            (CpuStorage::F32(q), CpuStorage::F32(kk), CpuStorage::F32(vv)) => {
                let (o, l) = kern::partition_attention(
                    &d,
                    (q, &c.lq),
                    (kk, &c.lk),
                    (vv, &c.lv),
                    qg,
                    kg,
                    rule,
                    scale,
                );
                (CpuStorage::F32(o), CpuStorage::F32(l))
            }
            (CpuStorage::F64(q), CpuStorage::F64(kk), CpuStorage::F64(vv)) => {
                let (o, l) = kern::partition_attention(
                    &d,
                    (q, &c.lq),
                    (kk, &c.lk),
                    (vv, &c.lv),
                    qg,
                    kg,
                    rule,
                    scale,
                );
                (CpuStorage::F64(o), CpuStorage::F64(l))
            }
            _ => {
                return Err(Error::dtype(
                    name,
                    format!("expects F32 or F64, got {:?}", self.dtype()),
                ))
            }
        };
        Ok((
            Tensor::from_cpu(out, [d.batch, d.nq, d.heads, d.head_dim]),
            Tensor::from_cpu(lse, [d.batch, d.heads, d.nq]),
        ))
    }

    /// The backward of [`Tensor::partition_attention`]: `(dq, dk, dv)`, contiguous, shaped like
    /// q [B, Nq, H, d] and k, v [B, Nk, H, d], given the forward's inputs, its outputs `out`
    /// [B, Nq, H, d] and `lse` [B, H, Nq], and `dout` [B, Nq, H, d] (any strides). The attention
    /// probabilities are recomputed from `lse`, never stored. Rows of queries with no allowed
    /// key, and keys no query may see, get zero gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn partition_attention_backward(
        &self,
        k: &Tensor,
        v: &Tensor,
        q_groups: &Tensor,
        k_groups: &Tensor,
        rule: GroupRule,
        scale: f64,
        out: &Tensor,
        lse: &Tensor,
        dout: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let name = "partition_attention_backward";
        let c = check(name, self, k, v, q_groups, k_groups)?;
        let d = c.dims;
        same_device(name, &[self, out, lse, dout])?;
        if out.dims() != self.dims() || dout.dims() != self.dims() {
            bail_shape!(
                name,
                "out {:?} and dout {:?} must match q {:?}",
                out.shape(),
                dout.shape(),
                self.shape()
            );
        }
        if lse.dims() != [d.batch, d.heads, d.nq] {
            bail_shape!(
                name,
                "lse must be [B, H, Nq] = [{}, {}, {}], got {:?}",
                d.batch,
                d.heads,
                d.nq,
                lse.shape()
            );
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return crate::cuda::attention::backward(
                self, k, v, q_groups, k_groups, rule, scale, out, dout,
            );
        }
        let (qg, kg) = (u8s(name, &c.q_groups)?, u8s(name, &c.k_groups)?);
        let (out, lse, dout) = (out.contiguous()?, lse.contiguous()?, dout.contiguous()?);
        macro_rules! run {
            ($variant:ident, $q:expr, $k:expr, $v:expr, $o:expr, $l:expr, $g:expr) => {{
                let (dq, dk, dv) = kern::partition_attention_backward(
                    &d,
                    ($q, &c.lq),
                    ($k, &c.lk),
                    ($v, &c.lv),
                    qg,
                    kg,
                    rule,
                    scale,
                    $o,
                    $l,
                    $g,
                );
                (
                    CpuStorage::$variant(dq),
                    CpuStorage::$variant(dk),
                    CpuStorage::$variant(dv),
                )
            }};
        }
        let (dq, dk, dv) = match (
            self.cpu(name)?,
            k.cpu(name)?,
            v.cpu(name)?,
            out.cpu(name)?,
            lse.cpu(name)?,
            dout.cpu(name)?,
        ) {
            (
                CpuStorage::F32(q),
                CpuStorage::F32(kk),
                CpuStorage::F32(vv),
                CpuStorage::F32(o),
                CpuStorage::F32(l),
                CpuStorage::F32(g),
            ) => run!(F32, q, kk, vv, o, l, g),
            (
                CpuStorage::F64(q),
                CpuStorage::F64(kk),
                CpuStorage::F64(vv),
                CpuStorage::F64(o),
                CpuStorage::F64(l),
                CpuStorage::F64(g),
            ) => run!(F64, q, kk, vv, o, l, g),
            _ => {
                return Err(Error::dtype(
                    name,
                    format!(
                        "q, k, v, out, lse and dout must all be F32 or all F64, got q {:?}, out {:?}, lse {:?}, dout {:?}",
                        self.dtype(),
                        out.dtype(),
                        lse.dtype(),
                        dout.dtype()
                    ),
                ))
            }
        };
        let (qd, kd) = (
            [d.batch, d.nq, d.heads, d.head_dim],
            [d.batch, d.nk, d.heads, d.head_dim],
        );
        Ok((
            Tensor::from_cpu(dq, qd),
            Tensor::from_cpu(dk, kd),
            Tensor::from_cpu(dv, kd),
        ))
    }
}
