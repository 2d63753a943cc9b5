// common.cuh: prepended to every kernel source by `kernels.rs` (NVRTC sees one string per
// module, so there is no include of our own files).
//
// It defines what all kernels share:
//   * `Strided`, the layout of an operand: rank ≤ MAX_RANK dims, a stride per dim (in
//     elements, 0 on broadcast dims) and a storage offset, passed to kernels by value;
//   * conversions between the storage types and the f32 that all float kernels compute in;
//   * block-wide sum / max reductions for the one-block-per-row kernels.
// Index arithmetic is 32-bit: the Rust launchers refuse tensors whose storage exceeds 2^32 - 1
// elements.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define MAX_RANK 6

// −∞ as f32 (NVRTC has no <math.h>, so no INFINITY macro).
#define NEG_INF __int_as_float(0xff800000)

// The layout of one operand; mirrors `Strided` in `tensor/src/cuda/launch.rs` field for field.
struct Strided {
    unsigned int rank;
    unsigned int offset;
    unsigned int dims[MAX_RANK];
    unsigned int strides[MAX_RANK];
};

// Storage offset of the element with row-major logical index `i` (i < the layout's element
// count). Rank 1, which every contiguous operand is (`Strided::of`), needs no division. The
// loop runs over all MAX_RANK dims, unrolled, and skips those past the rank: every index into
// `dims` and `strides` is then a constant, so the layout stays in registers. (A loop bounded by
// `rank` indexes them at run time, which makes the compiler copy each layout to local memory.)
__device__ __forceinline__ unsigned int strided_offset(const Strided &s, unsigned int i) {
    if (s.rank == 1) return s.offset + i * s.strides[0];
    unsigned int off = s.offset;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < (int)s.rank) {
            unsigned int n = s.dims[d];
            off += (i % n) * s.strides[d];
            i /= n;
        }
    }
    return off;
}

// Storage type -> f32 (or f64) and back, rounding to nearest on the way down.
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
    return __float2bfloat16(x);
}
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half(x); }

// A grid-stride loop over [0, n): every kernel launched by `launch::elementwise_config`.
#define FOR_EACH_INDEX(i, n)                                                        \
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n);           \
         i += blockDim.x * gridDim.x)

// Block-wide reductions. Every thread of the block must call them; all get the result.
// `scratch` is __shared__ float[32] (one slot per warp).
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    return v;
}
__device__ __forceinline__ float block_sum(float v, float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : NEG_INF;
    return warp_max(v);
}

// Counter-based noise, `draw_key` / `draw_uniform` of `tensor/src/random.rs` bit for bit: the
// i-th uniform in [0, 1) of stream `key` is SplitMix64 at state key + (i + 1)·γ, top 53 bits.
// Token draws (sample.cu) and dropout (sample.cu, residual.cu) use it.
#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

__device__ __forceinline__ unsigned long long splitmix64(unsigned long long state) {
    unsigned long long x = state + GOLDEN_GAMMA;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

__device__ __forceinline__ double draw_uniform(unsigned long long key, unsigned long long i) {
    return (double)(splitmix64(key + i * GOLDEN_GAMMA) >> 11) * (1.0 / 9007199254740992.0);
}
