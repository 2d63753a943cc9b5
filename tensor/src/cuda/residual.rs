//! Launchers for `kernels/residual.cu`: the gated residual with recomputed dropout, forward and
//! backward. h, gate, branch and dy share a dtype (F32 or BF16).

use super::kernels::Source;
use super::launch;
use super::CudaData;
use crate::cpu::sample::DropoutNoise;
use crate::{Error, Result, Tensor};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchArgs, PushKernelArg};

/// The sizes and the dropout arguments every kernel of the file takes.
struct Args {
    n: u32,
    cols: u32,
    groups: u32,
    rows_per_group: u32,
    has_dropout: i32,
    p: f64,
    scale: f32,
    key: u64,
}

impl Args {
    fn of(
        op: &'static str,
        x: &Tensor,
        gate: &Tensor,
        noise: Option<DropoutNoise>,
    ) -> Result<Args> {
        let n = launch::count(op, x.shape())?;
        let cols = x.dims().last().copied().unwrap_or(1) as u32;
        let groups = gate.dims()[0] as u32;
        let rows = n.checked_div(cols).unwrap_or(0);
        let (p, key) = noise.map_or((0.0, 0), |d| (d.p, d.key));
        Ok(Args {
            n,
            cols,
            groups,
            rows_per_group: rows / groups.max(1),
            has_dropout: noise.is_some() as i32,
            p,
            scale: (1.0 / (1.0 - p)) as f32,
            key,
        })
    }
    /// Pushes (n, cols, rows_per_group, has_dropout, p, scale, key), the kernels' common head.
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        b.arg(&self.n).arg(&self.cols).arg(&self.rows_per_group);
        b.arg(&self.has_dropout)
            .arg(&self.p)
            .arg(&self.scale)
            .arg(&self.key);
    }
}

fn dtype_error(op: &'static str) -> Error {
    Error::dtype(
        op,
        "on CUDA h, gate, branch and dy must all be F32 or all BF16",
    )
}

/// y = h + gate ⊙ dropout(branch) for contiguous operands.
pub fn forward(
    h: &Tensor,
    gate: &Tensor,
    branch: &Tensor,
    noise: Option<DropoutNoise>,
) -> Result<Tensor> {
    let name = "gated_residual";
    let a = Args::of(name, h, gate, noise)?;
    let (sh, sg, sb) = (
        launch::storage(name, h)?,
        launch::storage(name, gate)?,
        launch::storage(name, branch)?,
    );
    let o = sh.ordinal;
    fn run<T: DeviceRepr>(
        o: usize,
        sfx: &str,
        a: &Args,
        (h, g, b): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
    ) -> Result<CudaSlice<T>> {
        let name = "gated_residual";
        let (stream, f) = launch::kernel(o, Source::Residual, &format!("gated_residual_{sfx}"))?;
        let mut y = launch::alloc::<T>(name, &stream, a.n as usize)?;
        if a.n > 0 {
            let mut l = stream.launch_builder(&f);
            a.push(&mut l);
            l.arg(h).arg(g).arg(b).arg(&mut y);
            // SAFETY: matches `gated_residual_<T>(unsigned n, unsigned cols, unsigned
            // rows_per_group, int, double, float, unsigned long long, const T* h, const T* gate,
            // const T* branch, T* y)`; h, branch and y hold n elements, gate groups·cols.
            unsafe { l.launch(launch::elementwise_config(a.n)) }
                .map_err(launch::driver_err(name))?;
        }
        Ok(y)
    }
    let y = match (&sh.data, &sg.data, &sb.data) {
        (CudaData::F32(h), CudaData::F32(g), CudaData::F32(b)) => {
            CudaData::F32(run(o, "f32", &a, (h, g, b))?)
        }
        (CudaData::BF16(h), CudaData::BF16(g), CudaData::BF16(b)) => {
            CudaData::BF16(run(o, "bf16", &a, (h, g, b))?)
        }
        _ => return Err(dtype_error(name)),
    };
    Ok(launch::tensor(y, o, h.shape()))
}

/// (d branch, d gate [groups, cols]) for contiguous operands.
pub fn backward(
    gate: &Tensor,
    branch: &Tensor,
    dy: &Tensor,
    noise: Option<DropoutNoise>,
) -> Result<(Tensor, Tensor)> {
    let name = "gated_residual_backward";
    let a = Args::of(name, dy, gate, noise)?;
    let (sg, sb, sd) = (
        launch::storage(name, gate)?,
        launch::storage(name, branch)?,
        launch::storage(name, dy)?,
    );
    let o = sd.ordinal;
    let (d_branch, d_gate) = match (&sg.data, &sb.data, &sd.data) {
        (CudaData::F32(g), CudaData::F32(b), CudaData::F32(d)) => {
            let (x, y) = run_backward(o, "f32", &a, (g, b, d))?;
            (CudaData::F32(x), CudaData::F32(y))
        }
        (CudaData::BF16(g), CudaData::BF16(b), CudaData::BF16(d)) => {
            let (x, y) = run_backward(o, "bf16", &a, (g, b, d))?;
            (CudaData::BF16(x), CudaData::BF16(y))
        }
        _ => return Err(dtype_error(name)),
    };
    Ok((
        launch::tensor(d_branch, o, dy.shape()),
        launch::tensor(d_gate, o, [a.groups as usize, a.cols as usize]),
    ))
}

/// d branch (elementwise), then d gate in two deterministic steps (chunk partials, sums).
fn run_backward<T: DeviceRepr>(
    o: usize,
    sfx: &str,
    a: &Args,
    (gate, branch, dy): (&CudaSlice<T>, &CudaSlice<T>, &CudaSlice<T>),
) -> Result<(CudaSlice<T>, CudaSlice<T>)> {
    let name = "gated_residual_backward";
    let kernel = |k: &str| launch::kernel(o, Source::Residual, &format!("{k}_{sfx}"));
    let (stream, f_branch) = kernel("gated_residual_backward_branch")?;
    let (_, f_part) = kernel("gated_residual_backward_gate_partials")?;
    let (_, f_sums) = kernel("gated_residual_backward_gate_sums")?;
    let sums_len = a.groups * a.cols;
    let mut d_branch = launch::alloc::<T>(name, &stream, a.n as usize)?;
    let mut d_gate = launch::alloc::<T>(name, &stream, sums_len as usize)?;
    // With no rows the sums kernel alone runs: over zero chunks it writes zeros.
    let chunks_per_group = a.rows_per_group.div_ceil(launch::SUM_CHUNK_ROWS);
    let chunks = a.groups * chunks_per_group;
    let mut part = launch::alloc::<f32>(name, &stream, (chunks * a.cols) as usize)?;
    if a.n > 0 {
        let mut l = stream.launch_builder(&f_branch);
        a.push(&mut l);
        l.arg(gate).arg(dy).arg(&mut d_branch);
        // SAFETY: matches `gated_residual_backward_branch_<T>(unsigned n, unsigned cols,
        // unsigned rows_per_group, int, double, float, unsigned long long, const T* gate,
        // const T* dy, T* d_branch)`; dy and d_branch hold n elements.
        unsafe { l.launch(launch::elementwise_config(a.n)) }.map_err(launch::driver_err(name))?;

        let mut l = stream.launch_builder(&f_part);
        l.arg(&a.cols)
            .arg(&a.rows_per_group)
            .arg(&launch::SUM_CHUNK_ROWS);
        l.arg(&chunks_per_group)
            .arg(&a.has_dropout)
            .arg(&a.p)
            .arg(&a.scale)
            .arg(&a.key);
        l.arg(branch).arg(dy).arg(&mut part);
        // SAFETY: matches `gated_residual_backward_gate_partials_<T>(unsigned cols, unsigned
        // rows_per_group, unsigned chunk, unsigned chunks_per_group, int, double, float,
        // unsigned long long, const T* branch, const T* dy, float* part)`; part holds
        // chunks·cols values, one per (block x, column).
        unsafe { l.launch(launch::chunks_config(name, chunks, a.cols)?) }
            .map_err(launch::driver_err(name))?;
    }
    if sums_len > 0 {
        let mut l = stream.launch_builder(&f_sums);
        l.arg(&sums_len)
            .arg(&a.cols)
            .arg(&chunks_per_group)
            .arg(&part)
            .arg(&mut d_gate);
        // SAFETY: matches `gated_residual_backward_gate_sums_<T>(unsigned n, unsigned cols,
        // unsigned chunks_per_group, const float* part, T* d_gate)`; d_gate holds n values.
        unsafe { l.launch(launch::elementwise_config(sums_len)) }
            .map_err(launch::driver_err(name))?;
    }
    Ok((d_branch, d_gate))
}
