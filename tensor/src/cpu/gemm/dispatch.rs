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
    /// Describes a kernel with an `MR × NR` tile, its packers being the portable ones, and
    /// derives the cache blocking from the byte budgets below.
    ///
    /// # Safety
    /// `micro` must compute an `MR × NR` tile from panels packed by `pack_a::<T, MR>` and
    /// `pack_b::<T, NR>`, and must be executable on every CPU this descriptor is used on.
    unsafe fn new<const MR: usize, const NR: usize>(micro: MicroFn<T>) -> Self {
        assert!(MR * NR <= MAX_TILE);
        let size = std::mem::size_of::<T>();
        let kc = KC_BYTES / size;
        let nc = (B_BLOCK_BYTES / (kc * size) / NR).max(1) * NR;
        let mc = (A_BLOCK_BYTES / (kc * size) / MR).max(1) * MR;
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

// Cache blocking, tuned on the development machine (Zen 4: 32 KiB L1d and 1 MiB L2 per core,
// 32 MiB shared L3) and expressed in bytes so that f32 and f64 get the same footprints.
// Measured there with the AVX-512 f32 kernel, KC from 256 to 512 and NC, MC over a factor of
// 4 around these values are within about 2 % of each other; KC = 192 loses about 3 %.

/// Depth of the packed panels in bytes per lane: `KC` = 384 f32 / 192 f64. A 14-row A panel is
/// then 21 KiB, which the L1 keeps while B panels stream past it, and each C tile is read and
/// written once per 384 rank-1 updates.
const KC_BYTES: usize = 1536;
/// Packed B block (`KC × NC`): about half of the L2, reused by every A panel of the A block.
/// f32 AVX-512: NC = 320 (480 KiB).
const B_BLOCK_BYTES: usize = 480 << 10;
/// Packed A block (`MC × KC`): about 1 MiB (from L3); B is repacked once per MC rows.
/// f32 AVX-512: MC = 672 (48 panels).
const A_BLOCK_BYTES: usize = 1 << 20;

impl sealed::Sealed for f32 {
    const GEMM_ZERO: Self = 0.0;

    fn kernel(kind: KernelKind) -> Option<Kernel<f32>> {
        if !kind.available() {
            return None;
        }
        // SAFETY (all arms): each kernel computes the MR × NR tile named by its constants from
        // panels of the matching packers, and the CPU supports it (checked just above).
        match kind {
            KernelKind::Generic => Some(unsafe {
                Kernel::new::<{ kernel_generic::MR }, { kernel_generic::NR }>(
                    kernel_generic::kernel::<f32>,
                )
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => Some(unsafe {
                Kernel::new::<{ kernel_avx2::MR }, { kernel_avx2::NR_F32 }>(kernel_avx2::kernel_f32)
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => Some(unsafe {
                const MR: usize = kernel_avx512::MR;
                const NR: usize = kernel_avx512::NR_F32;
                Kernel {
                    pack_a: pack_avx512::pack_a_f32::<MR>,
                    pack_b: pack_avx512::pack_b_f32::<NR>,
                    ..Kernel::new::<MR, NR>(kernel_avx512::kernel_f32)
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
        if !kind.available() {
            return None;
        }
        // SAFETY (all arms): as for f32.
        match kind {
            KernelKind::Generic => Some(unsafe {
                Kernel::new::<{ kernel_generic::MR }, { kernel_generic::NR }>(
                    kernel_generic::kernel::<f64>,
                )
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx2 => Some(unsafe {
                Kernel::new::<{ kernel_avx2::MR }, { kernel_avx2::NR_F64 }>(kernel_avx2::kernel_f64)
            }),
            #[cfg(target_arch = "x86_64")]
            KernelKind::Avx512 => Some(unsafe {
                Kernel::new::<{ kernel_avx512::MR }, { kernel_avx512::NR_F64 }>(
                    kernel_avx512::kernel_f64,
                )
            }),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}
