//! Tests of [`gemm`](super::gemm) against a naive triple loop in f64, for every kernel the test
//! machine can run, f32 and f64, one and several threads.
//!
//! Tolerance: the standard worst-case bound for a dot product of length `k` (plus the initial C
//! value when accumulating), `|ours − exact| ≤ (k + 1) · ε · Σ|aᵢ·bᵢ|` (+ |c₀|), with ε the machine
//! epsilon of the element type (f32: 1.19e-7, f64: 2.22e-16). Any indexing or packing bug gives
//! errors of the order of the values themselves, far above it.

use super::sealed::Sealed;
use super::*;

/// Element types under test, with conversions to and from the f64 reference.
trait TestFloat: GemmScalar {
    const EPS: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl TestFloat for f32 {
    const EPS: f64 = f32::EPSILON as f64;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl TestFloat for f64 {
    const EPS: f64 = f64::EPSILON;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// Deterministic values in [-1, 1) (xorshift64*), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Every kernel kind the running CPU supports.
fn kinds() -> Vec<KernelKind> {
    [KernelKind::Generic, KernelKind::Avx2, KernelKind::Avx512]
        .into_iter()
        .filter(|k| k.available())
        .collect()
}

/// How one case lays out its operands.
#[derive(Clone, Copy, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    /// A is stored transposed (k × m row-major), i.e. row stride 1.
    ta: bool,
    /// B is stored transposed (n × k row-major), i.e. row stride 1.
    tb: bool,
    accumulate: bool,
    /// Extra elements at the end of every stored row of A, B and C.
    pad: usize,
    /// B goes in packed beforehand (`PackedB`, `gemm_packed`'s path).
    packed_b: bool,
}

impl Case {
    fn new(m: usize, n: usize, k: usize) -> Case {
        Case {
            m,
            n,
            k,
            ta: false,
            tb: false,
            accumulate: false,
            pad: 0,
            packed_b: false,
        }
    }
}

/// Runs one case with the given kernel kind and thread count and checks every element of C,
/// including that the padding between rows of C is untouched.
fn check<T: TestFloat>(kind: KernelKind, threads: usize, case: Case) {
    let Case {
        m,
        n,
        k,
        ta,
        tb,
        accumulate,
        pad,
        packed_b,
    } = case;
    let mut rng = Lcg(0x9e37_79b9_7f4a_7c15 ^ (m * 1_000_003 + n * 1009 + k) as u64);
    // Logical A (m × k) and B (k × n) in f64, and their stored forms with strides.
    let a64: Vec<f64> = (0..m * k).map(|_| rng.next()).collect();
    let b64: Vec<f64> = (0..k * n).map(|_| rng.next()).collect();
    let store = |x: &[f64], rows: usize, cols: usize, transposed: bool| -> (Vec<T>, usize, usize) {
        if transposed {
            let ld = rows + pad;
            let mut s = vec![T::from_f64(f64::NAN); (cols * ld).max(1)];
            for i in 0..rows {
                for j in 0..cols {
                    s[j * ld + i] = T::from_f64(x[i * cols + j]);
                }
            }
            (s, 1, ld)
        } else {
            let ld = cols + pad;
            let mut s = vec![T::from_f64(f64::NAN); (rows * ld).max(1)];
            for i in 0..rows {
                for j in 0..cols {
                    s[i * ld + j] = T::from_f64(x[i * cols + j]);
                }
            }
            (s, ld, 1)
        }
    };
    let (sa, rsa, csa) = store(&a64, m, k, ta);
    let (sb, rsb, csb) = store(&b64, k, n, tb);
    let ldc = n + pad;
    const SENTINEL: f64 = 12345.0;
    let mut c = vec![T::from_f64(SENTINEL); m * ldc];
    let c0: Vec<f64> = (0..m * n).map(|_| rng.next()).collect();
    if accumulate {
        for i in 0..m {
            for j in 0..n {
                c[i * ldc + j] = T::from_f64(c0[i * n + j]);
            }
        }
    }
    let kern = T::kernel(kind).expect("kernel kind exists on this target");
    let a = MatRef {
        data: &sa,
        row_stride: rsa,
        col_stride: csa,
    };
    let b = MatRef {
        data: &sb,
        row_stride: rsb,
        col_stride: csb,
    };
    let mut packed = PackedB::for_kernel(kern);
    let b = if packed_b {
        packed.pack(k, n, b);
        BOperand::Packed(&packed)
    } else {
        BOperand::Strided(b)
    };
    let c_all = as_uninit(&mut c);
    // SAFETY: c is an initialised Vec.
    unsafe { gemm_with(&kern, threads, m, n, k, a, b, c_all, ldc, accumulate) };

    for i in 0..m {
        for j in 0..n {
            // Reference from the values actually stored (rounded to T), summed in f64.
            let (mut exact, mut mag) = (0.0, 0.0);
            if accumulate {
                exact = T::from_f64(c0[i * n + j]).to_f64();
                mag = exact.abs();
            }
            for kk in 0..k {
                let p = sa[i * rsa + kk * csa].to_f64() * sb[kk * rsb + j * csb].to_f64();
                exact += p;
                mag += p.abs();
            }
            let got = c[i * ldc + j].to_f64();
            let tol = (k + 1) as f64 * T::EPS * mag + f64::MIN_POSITIVE;
            assert!(
                (got - exact).abs() <= tol,
                "{kind:?} threads={threads} {case:?}: C[{i},{j}] = {got}, expected {exact} (tol {tol})"
            );
        }
        for j in n..ldc {
            assert_eq!(
                c[i * ldc + j].to_f64(),
                SENTINEL,
                "{kind:?} {case:?}: padding of C row {i} written"
            );
        }
    }
}

/// Shapes that cover 1×1, odd primes, tall and skinny products, every tile edge remainder,
/// and more than one MC / KC / NC block.
const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 1, 7),
    (2, 3, 4),
    (37, 53, 29),
    (14, 32, 16),
    (13, 31, 17),
    (15, 33, 257),
    (29, 7, 300),
    (6, 16, 1),
    (1000, 3, 7),
    (3, 1000, 5),
    (5, 7, 1000),
    (1, 200, 64),
    (200, 1, 64),
    (67, 71, 73),
    (1100, 40, 20),
    // Taller than several MC blocks: more row pieces than threads.
    (3000, 33, 10),
    (20, 600, 300),
];

fn all_shapes<T: TestFloat>() {
    for kind in kinds() {
        for threads in [1, 2, 3] {
            for &(m, n, k) in SHAPES {
                for packed_b in [false, true] {
                    let case = Case {
                        packed_b,
                        ..Case::new(m, n, k)
                    };
                    check::<T>(kind, threads, case);
                }
            }
        }
    }
}

#[test]
fn shapes_f32() {
    all_shapes::<f32>();
}

#[test]
fn shapes_f64() {
    all_shapes::<f64>();
}

fn transposes_padding_accumulate<T: TestFloat>() {
    for kind in kinds() {
        for threads in [1, 2] {
            for &(m, n, k) in &[(37, 53, 29), (64, 64, 64), (5, 130, 270), (40, 50, 800)] {
                for ta in [false, true] {
                    for tb in [false, true] {
                        for accumulate in [false, true] {
                            for (pad, packed_b) in [(0, false), (3, false), (3, true)] {
                                check::<T>(
                                    kind,
                                    threads,
                                    Case {
                                        m,
                                        n,
                                        k,
                                        ta,
                                        tb,
                                        accumulate,
                                        pad,
                                        packed_b,
                                    },
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn transposes_padding_accumulate_f32() {
    transposes_padding_accumulate::<f32>();
}

#[test]
fn transposes_padding_accumulate_f64() {
    transposes_padding_accumulate::<f64>();
}

#[test]
fn k_zero_zeroes_or_keeps_c() {
    for kind in kinds() {
        for accumulate in [false, true] {
            for pad in [0, 2] {
                // `check` with k = 0 expects exactly 0 (or the initial C when accumulating).
                check::<f32>(
                    kind,
                    1,
                    Case {
                        k: 0,
                        accumulate,
                        pad,
                        ..Case::new(5, 9, 0)
                    },
                );
                check::<f64>(
                    kind,
                    2,
                    Case {
                        k: 0,
                        accumulate,
                        pad,
                        ..Case::new(5, 9, 0)
                    },
                );
            }
        }
    }
}

/// `gemm_uninit` writes every element of C and reads none: over NaN-filled memory it gives
/// what `gemm` gives over zeros, for a product large enough to split over threads and for
/// K = 0 (zeros).
#[test]
fn gemm_uninit_overwrites_all_of_c() {
    let mut rng = crate::Rng::seed(3);
    for (m, n, k) in [(150, 140, 130), (7, 5, 0)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform() as f32 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.uniform() as f32 - 0.5).collect();
        let (ra, rb) = (MatRef::row_major(&a, k), MatRef::row_major(&b, n));
        let mut want = vec![0.0f32; m * n];
        gemm(m, n, k, ra, rb, &mut want, n, false);
        let mut got = vec![MaybeUninit::new(f32::NAN); m * n];
        gemm_uninit(m, n, k, ra, rb, &mut got, n);
        // SAFETY: every element was initialised (with NaN) before the call.
        let got: Vec<f32> = got.iter().map(|x| unsafe { x.assume_init() }).collect();
        assert_eq!(got, want, "{m}×{n}×{k}");
    }
}

#[test]
fn empty_m_or_n_is_a_no_op() {
    static A: [f32; 4] = [1.0; 4];
    let (a, b) = (&A, &A);
    let mut c = [7.0f32; 4];
    let mat = |d: &'static [f32]| MatRef {
        data: d,
        row_stride: 2,
        col_stride: 1,
    };
    gemm(0, 2, 2, mat(&[]), mat(b), &mut c, 2, false);
    gemm(2, 0, 2, mat(a), mat(&[]), &mut c, 2, false);
    gemm(0, 0, 0, mat(&[]), mat(&[]), &mut [], 0, false);
    assert_eq!(c, [7.0; 4]);
}

#[test]
fn public_gemm_large_enough_to_go_parallel() {
    // 200·300·150 multiply-adds is above PARALLEL_MIN_MNK, so this takes the rayon path with
    // the default kernel; compare it with the single-threaded generic kernel.
    let (m, n, k) = (200, 300, 150);
    assert!(m * n * k >= PARALLEL_MIN_MNK);
    let mut rng = Lcg(42);
    let a: Vec<f32> = (0..m * k).map(|_| rng.next() as f32).collect();
    let b: Vec<f32> = (0..k * n).map(|_| rng.next() as f32).collect();
    let (ra, rb) = (
        MatRef {
            data: &a,
            row_stride: k,
            col_stride: 1,
        },
        MatRef {
            data: &b,
            row_stride: n,
            col_stride: 1,
        },
    );
    let mut fast = vec![0.0f32; m * n];
    let mut slow = vec![0.0f32; m * n];
    gemm(m, n, k, ra, rb, &mut fast, n, false);
    let generic = f32::kernel(KernelKind::Generic).unwrap();
    // SAFETY: slow is an initialised Vec.
    unsafe {
        gemm_with(
            &generic,
            1,
            m,
            n,
            k,
            ra,
            BOperand::Strided(rb),
            as_uninit(&mut slow),
            n,
            false,
        )
    };
    for (x, y) in fast.iter().zip(&slow) {
        assert!(
            (x - y).abs() <= 2.0 * k as f32 * f32::EPSILON * k as f32,
            "{x} vs {y}"
        );
    }
}

#[test]
fn best_kernel_is_available_and_simd_kernels_run_here() {
    let best = KernelKind::best();
    assert!(best.available());
    #[cfg(target_arch = "x86_64")]
    {
        // Make it visible which SIMD paths the shape tests above exercised on this machine.
        if is_x86_feature_detected!("avx512f") {
            assert_eq!(best, KernelKind::Avx512);
        }
        eprintln!("gemm kernels tested on this CPU: {:?}", kinds());
    }
}

#[test]
#[should_panic(expected = "A has")]
fn short_a_panics() {
    let a = [1.0f32; 5];
    let b = [1.0f32; 6];
    let mut c = [0.0f32; 4];
    let ra = MatRef {
        data: &a,
        row_stride: 3,
        col_stride: 1,
    };
    let rb = MatRef {
        data: &b,
        row_stride: 2,
        col_stride: 1,
    };
    gemm(2, 2, 3, ra, rb, &mut c, 2, false);
}

#[test]
#[should_panic(expected = "rows overlap")]
fn overlapping_c_rows_panic() {
    let a = [1.0f32; 6];
    let b = [1.0f32; 6];
    let mut c = [0.0f32; 8];
    let ra = MatRef {
        data: &a,
        row_stride: 3,
        col_stride: 1,
    };
    let rb = MatRef {
        data: &b,
        row_stride: 2,
        col_stride: 1,
    };
    gemm(2, 2, 3, ra, rb, &mut c, 1, false);
}

#[test]
fn split_grid_follows_the_shape_of_c() {
    // Two threads: cut the longer side.
    assert_eq!(split_grid(2, 8192, 768, 586, 24), (2, 1));
    assert_eq!(split_grid(2, 64, 4096, 5, 128), (1, 2));
    // One tile row: only columns can be split.
    assert_eq!(split_grid(4, 10, 1000, 1, 32), (1, 4));
    // Four threads on a square: 2 × 2.
    assert_eq!(split_grid(4, 1024, 1024, 74, 32), (2, 2));
    assert_eq!(split_grid(1, 1024, 1024, 74, 32), (1, 1));
}

#[test]
fn a_packing_is_reused_for_other_shapes_and_strides() {
    // One PackedB packed three times (growing, shrinking, transposed), each product compared
    // with `gemm` on the same operands.
    let mut packed = PackedB::<f64>::new();
    for &(m, n, k, transposed) in &[(3, 5, 4, false), (70, 90, 500, true), (9, 2, 3, false)] {
        let a: Vec<f64> = (0..m * k).map(|i| (i % 17) as f64 - 8.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i % 13) as f64 * 0.5).collect();
        let b = if transposed {
            MatRef::row_major(&b, k).t()
        } else {
            MatRef::row_major(&b, n)
        };
        let a = MatRef::row_major(&a, k);
        let (mut want, mut got) = (vec![1.0; m * n], vec![1.0; m * n]);
        gemm(m, n, k, a, b, &mut want, n, true);
        packed.pack(k, n, b);
        gemm_packed(m, a, &packed, &mut got, n, true);
        assert_eq!(got, want, "{m}×{n}×{k}");
    }
}
