//! f32 matrix multiply: our blocked GEMM (`tensor::cpu::gemm`) against the `matrixmultiply`
//! crate, both on all cores (rayon's pool for ours, matrixmultiply's `threading` feature).
//!
//! One criterion group per shape with both implementations side by side. Throughput is set to
//! `2·m·n·k` elements, so the "Gelem/s" criterion prints is GFLOP/s.
//!
//! Run: `cargo bench --bench matmul` (about a minute). Shapes: square 256 … 2048, and the
//! transformer projections `[B·L, D]·[D, 3D]` (QKV) and `[B·L, D]·[D, 4D]` (MLP up) for
//! `D = 256, 768` with `B·L = 8192`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use tensor::cpu::gemm::{gemm, MatRef};

/// `(name, m, n, k)` for `C[m×n] = A[m×k]·B[k×n]`.
fn shapes() -> Vec<(String, usize, usize, usize)> {
    let mut v: Vec<_> = [256, 512, 1024, 2048]
        .into_iter()
        .map(|s| (format!("square_{s}"), s, s, s))
        .collect();
    let bl = 8192;
    for d in [256, 768] {
        // [B·L, D]·[D, 3D] and [B·L, D]·[D, 4D].
        v.push((format!("qkv_d{d}"), bl, 3 * d, d));
        v.push((format!("mlp_d{d}"), bl, 4 * d, d));
    }
    v
}

/// Deterministic inputs in [-1, 1].
fn fill(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn matmul(c: &mut Criterion) {
    for (name, m, n, k) in shapes() {
        let a = fill(m * k, 1);
        let b = fill(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let mut group = c.benchmark_group(format!("matmul/{name}"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .throughput(Throughput::Elements(2 * (m * n * k) as u64));
        group.bench_function(BenchmarkId::new("ours", format!("{m}x{n}x{k}")), |bench| {
            bench.iter(|| {
                let ra = MatRef {
                    data: black_box(&a[..]),
                    row_stride: k,
                    col_stride: 1,
                };
                let rb = MatRef {
                    data: black_box(&b[..]),
                    row_stride: n,
                    col_stride: 1,
                };
                gemm(m, n, k, ra, rb, &mut out, n, false);
                black_box(&mut out);
            })
        });
        group.bench_function(
            BenchmarkId::new("matrixmultiply", format!("{m}x{n}x{k}")),
            |bench| {
                bench.iter(|| {
                    // SAFETY: `a` is m×k, `b` k×n and `out` m×n, all row-major and fully allocated.
                    unsafe {
                        matrixmultiply::sgemm(
                            m,
                            k,
                            n,
                            1.0,
                            black_box(a.as_ptr()),
                            k as isize,
                            1,
                            black_box(b.as_ptr()),
                            n as isize,
                            1,
                            0.0,
                            out.as_mut_ptr(),
                            n as isize,
                            1,
                        )
                    };
                    black_box(&mut out);
                })
            },
        );
        group.finish();
    }
}

criterion_group!(benches, matmul);
criterion_main!(benches);
