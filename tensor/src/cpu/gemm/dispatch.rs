//! Kernel descriptors and run-time selection: which micro-kernel runs, with which register tile,
//! packing routines and cache blocking.

#[cfg(target_arch = "x86_64")]
use super::{kernel_avx2, kernel_avx512, pack_avx512};
use super::{kernel_generic, pack, sealed, GemmScalar};

/// The micro-kernel families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// Portable Rust, any CPU.
    Generic,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512F.
    Avx512,
}

impl KernelKind {
    /// Whether the running CPU can execute this kind of kernel.
    pub fn available(self) -> bool {
        match self {
            KernelKind::Generic => true,
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest kind the running CPU supports (feature detection is cached by std).
    pub fn best() -> KernelKind {
        // TUNING-ONLY
        match std::env::var("GKERNEL").as_deref() {
            Ok("avx2") => return KernelKind::Avx2,
            Ok("generic") => return KernelKind::Generic,
            _ => {}
        }
        [KernelKind::Avx512, KernelKind::Avx2]
            .into_iter()
            .find(|kind| kind.available())
            .unwrap_or(KernelKind::Generic)
    }
}

/// A micro-kernel: `(kc, A panel, B panel, C tile, C row stride, accumulate)`.
type MicroFn<T> = unsafe fn(usize, *const T, *const T, *mut T, usize, bool);
/// A packing routine: `(rows or kc, kc or cols, source, row stride, col stride, destination)`.
type PackFn<T> = unsafe fn(usize, usize, *const T, usize, usize, *mut T);

/// The largest register tile (`MR · NR`) of any kernel; sizes the buffer for edge tiles.
pub(crate) const MAX_TILE: usize = 14 * 32;

/// A micro-kernel together with its tile shape, its cache blocking and matching packers.
#[derive(Clone, Copy)]
pub struct Kernel<T> {
    /// Rows of the register tile.
    pub(crate) mr: usize,
    /// Columns of the register tile.
    pub(crate) nr: usize,
    /// Rows of A packed at a time (a multiple of `mr`).
    pub(crate) mc: usize,
    /// Depth of the packed panels.
    pub(crate) kc: usize,
    /// Columns of B packed at a time (a multiple of `nr`).
    pub(crate) nc: usize,
    pub(crate) micro: MicroFn<T>,
    pub(crate) pack_a: PackFn<T>,
    pub(crate) pack_b: PackFn<T>,
}

impl<T: GemmScalar> Kernel<T> {
    /// Describes a kernel with an `MR × NR` tile, choosing the blocking from byte budgets:
    /// an `MR × KC` A panel of at most `l1_bytes`, a `KC × NC` B block of about `l2_bytes`, an
    /// `MC × KC` A block of about 1 MiB.
    ///
    /// # Safety
    /// `micro` must compute an `MR × NR` tile from panels packed by `pack_a::<T, MR>` and
    /// `pack_b::<T, NR>`, and must be executable on every CPU this descriptor is used on.
    unsafe fn new<const MR: usize, const NR: usize>(
        micro: MicroFn<T>,
        l1_bytes: usize,
        l2_bytes: usize,
    ) -> Self {
        assert!(MR * NR <= MAX_TILE);
        let size = std::mem::size_of::<T>();
        let kc = (l1_bytes / (MR * size)).clamp(16, 512) / 16 * 16;
        let nc = (l2_bytes / (kc * size) / NR).max(1) * NR;
        let mc = ((1 << 20) / (kc * size) / MR).max(1) * MR;
        // TUNING-ONLY
        let ev = |n: &str, d: usize| {
            std::env::var(n)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        let kc = ev("GKC", kc);
        let nc = ev("GNC", nc / NR) * NR;
        let mc = ev("GMC", mc / MR) * MR;
        Kernel {
            mr: MR,
            nr: NR,
            mc,
            kc,
            nc,
            micro,
            pack_a: pack::pack_a::<T, MR>,
            pack_b: pack::pack_b::<T, NR>,
        }
    }
}

/// Per-core cache budgets used for blocking (bytes): half of a 32 KiB L1d for the A panel, half of
/// a 1 MiB L2 for the B block (Zen 4; also reasonable for most current x86 and Arm cores).
const L1_BUDGET: usize = 16 << 10;
const L2_BUDGET: usize = 512 << 10;

impl sealed::Sealed for f32 {
    const GEMM_ZERO: Self = 0.0;

    fn kernel(kind: KernelKind) -> Option<Kernel<f32>> {
        // SAFETY (all arms): each kernel computes the MR × NR tile named by its constants;
        // callers check `KernelKind::available` before using an x86 kernel (see `gemm_with`).
        match kind {
            KernelKind::Generic => Some(unsafe {
                Kernel::new::<{ kernel_generic::MR }, { kernel_generic::NR }>(
                    kernel_generic::kernel::<f32>,
                    L1_BUDGET,
                    L2_BUDGET,
                )
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => Some(unsafe {
                Kernel::new::<{ kernel_avx2::MR }, { kernel_avx2::NR_F32 }>(
                    kernel_avx2::kernel_f32,
                    L1_BUDGET,
                    L2_BUDGET,
                )
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => Some(unsafe {
                const MR: usize = kernel_avx512::MR;
                const NR: usize = kernel_avx512::NR_F32;
                Kernel {
                    pack_a: pack_avx512::pack_a_f32::<MR>,
                    pack_b: pack_avx512::pack_b_f32::<NR>,
                    ..Kernel::new::<MR, NR>(kernel_avx512::kernel_f32, L1_BUDGET, L2_BUDGET)
                }
            }),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}

impl sealed::Sealed for f64 {
    const GEMM_ZERO: Self = 0.0;

    fn kernel(kind: KernelKind) -> Option<Kernel<f64>> {
        // SAFETY (all arms): as for f32.
        match kind {
            KernelKind::Generic => Some(unsafe {
                Kernel::new::<{ kernel_generic::MR }, { kernel_generic::NR }>(
                    kernel_generic::kernel::<f64>,
                    L1_BUDGET,
                    L2_BUDGET,
                )
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => Some(unsafe {
                Kernel::new::<{ kernel_avx2::MR }, { kernel_avx2::NR_F64 }>(
                    kernel_avx2::kernel_f64,
                    L1_BUDGET,
                    L2_BUDGET,
                )
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => Some(unsafe {
                Kernel::new::<{ kernel_avx512::MR }, { kernel_avx512::NR_F64 }>(
                    kernel_avx512::kernel_f64,
                    L1_BUDGET,
                    L2_BUDGET,
                )
            }),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}
