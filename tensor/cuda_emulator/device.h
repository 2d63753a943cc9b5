// device.h: what our CUDA C kernels use from the CUDA language, defined for a host C++
// compiler, so that `build` can compile `tensor/src/cuda/kernels/*.cu` unchanged into the
// emulated driver (see README.md).
//
// Each GPU thread of a block runs as a fiber (runtime.cpp): `threadIdx` and the other built-in
// variables are set by the scheduler before it resumes a fiber, `__syncthreads` and the warp
// shuffles yield to it, and `__shared__` variables are per host thread, which runs one block at
// a time.

#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// ---- qualifiers ----------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
// Shared by the fibers of a block, which all run on one host thread, one block at a time.
#define __shared__ static thread_local

// ---- built-in variables (set by the scheduler for each fiber) ------------------------------
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

// ---- synchronisation (runtime.cpp): both yield the fiber to the block's scheduler ----------
// What one thread wrote to shared memory before a barrier, another reads after it, so the
// compiler must not keep shared values in registers across the call. Without the memory
// clobbers it does: g++ proves that no other file can reach a `__shared__` array (its address
// never escapes) and so that the call cannot change it. (`build` also turns that proof off,
// -fno-ipa-reference, for any such reasoning the clobbers would not cover.)
namespace emu {
void block_barrier();
}  // namespace emu
inline void __syncthreads() {
    asm volatile("" ::: "memory");
    emu::block_barrier();
    asm volatile("" ::: "memory");
}
namespace emu {
// Every live lane of the calling warp offers `bits`; each gets the bits offered by lane
// `src_lane` of its warp.
unsigned long long warp_exchange(unsigned long long bits, unsigned int src_lane);
}  // namespace emu

template <typename T>
inline T __shfl_xor_sync(unsigned int /*mask*/, T v, int lane_mask) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    unsigned int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned int lane = tid & 31;
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = emu::warp_exchange(bits, (lane ^ (unsigned int)lane_mask) & 31);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

// ---- atomics: blocks may run on several host threads at once -------------------------------
namespace emu {
// Floats add by compare-and-swap on their bits (`Bits`, an unsigned integer of their size).
template <typename T, typename Bits>
inline T atomic_add_float(T *address, T v) {
    Bits *bits = reinterpret_cast<Bits *>(address);
    Bits old = __atomic_load_n(bits, __ATOMIC_RELAXED), next;
    T value;
    do {
        std::memcpy(&value, &old, sizeof(T));
        value += v;
        std::memcpy(&next, &value, sizeof(T));
    } while (!__atomic_compare_exchange_n(bits, &old, next, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    std::memcpy(&value, &old, sizeof(T));
    return value;
}
}  // namespace emu
inline float atomicAdd(float *a, float v) { return emu::atomic_add_float<float, unsigned int>(a, v); }
inline double atomicAdd(double *a, double v) {
    return emu::atomic_add_float<double, unsigned long long>(a, v);
}
inline unsigned int atomicAdd(unsigned int *a, unsigned int v) {
    return __atomic_fetch_add(a, v, __ATOMIC_RELAXED);
}
inline int atomicAdd(int *a, int v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }

// ---- math ----------------------------------------------------------------------------------
// expf, logf, tanhf, fmaxf, … come from <math.h>, as in CUDA.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
namespace emu {
// The same bits read as another type of the same size.
template <typename To, typename From>
inline To bit_cast(From from) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast keeps the size");
    To to;
    std::memcpy(&to, &from, sizeof(To));
    return to;
}
}  // namespace emu
inline float __int_as_float(int i) { return emu::bit_cast<float>(i); }
inline int __float_as_int(float f) { return emu::bit_cast<int>(f); }
inline double __longlong_as_double(long long i) { return emu::bit_cast<double>(i); }

// ---- bf16 and f16 (cuda_bf16.h, cuda_fp16.h) -----------------------------------------------
// Stored as their bits; conversions round to nearest even, as CUDA's do.
struct __nv_bfloat16 {
    unsigned short bits;
    operator float() const;
};
struct __half {
    unsigned short bits;
    operator float() const;
};

namespace emu {
// `x` rounded to a float with `mantissa` explicit bits and normal exponents from `min_exp`
// (subnormals below), to nearest even; ±inf past `max_finite`. Exact: the scaled quotient is
// rounded by nearbyint in double, and every result is a float.
inline float round_to_format(double x, int mantissa, int min_exp, double max_finite) {
    if (std::isnan(x) || std::isinf(x) || x == 0.0) return (float)x;
    int e = std::ilogb(x);
    if (e < min_exp) e = min_exp;
    double step = std::ldexp(1.0, e - mantissa);
    double r = std::nearbyint(x / step) * step;
    if (std::fabs(r) > max_finite) return x > 0 ? INFINITY : -INFINITY;
    return (float)r;
}
// f16: 10 mantissa bits, exponents -14..15, largest finite 65504.
inline unsigned short half_bits(double x) {
    if (std::isnan(x)) return 0x7e00;
    float f = round_to_format(x, 10, -14, 65504.0);
    unsigned int u = bit_cast<unsigned int>(f);
    unsigned int sign = (u >> 16) & 0x8000;
    if (std::isinf(f)) return (unsigned short)(sign | 0x7c00);
    if (f == 0.0f) return (unsigned short)sign;
    int e = std::ilogb(f);
    if (e < -14) return (unsigned short)(sign | (unsigned int)std::ldexp(std::fabs(f), 24));
    unsigned int mant = (u >> 13) & 0x3ff;
    return (unsigned short)(sign | (unsigned int)(e + 15) << 10 | mant);
}
inline float half_value(unsigned short h) {
    float sign = (h & 0x8000) ? -1.0f : 1.0f;
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * std::ldexp((float)m, -24);
    return sign * std::ldexp((float)(m | 0x400), e - 25);
}
}  // namespace emu

inline float __bfloat162float(__nv_bfloat16 b) {
    return emu::bit_cast<float>((unsigned int)b.bits << 16);
}
inline __nv_bfloat16 __double2bfloat16(double x) {
    if (std::isnan(x)) return {0x7fff};
    float f = emu::round_to_format(x, 7, -126, 3.3895313892515355e38);
    return {(unsigned short)(emu::bit_cast<unsigned int>(f) >> 16)};
}
inline __nv_bfloat16 __float2bfloat16(float x) { return __double2bfloat16(x); }
inline float __half2float(__half h) { return emu::half_value(h.bits); }
inline __half __double2half(double x) { return {emu::half_bits(x)}; }
inline __half __float2half(float x) { return __double2half(x); }
inline __nv_bfloat16::operator float() const { return __bfloat162float(*this); }
inline __half::operator float() const { return __half2float(*this); }
