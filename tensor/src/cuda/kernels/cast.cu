// cast.cu: strided copies (making a view contiguous) and dtype conversions.
//
// Mapping: one thread per output element in a grid-stride loop, blocks of 256 threads.
//   copy_strided_<T>: out[i] = src[strided_offset(s, i)], out contiguous.
//   copy_into_strided_<T>: dst[strided_offset(s, i)] = src[i], src contiguous (one input of
//                     `cat` into its region of the output).
//   cast_<S>_<D>:     out[i] = convert(src[i]), both contiguous. Conversions go through f64,
//                     as the CPU's `cast` does: floats round to nearest; float -> integer
//                     truncates toward zero and saturates (NaN -> 0), like Rust's `as`.

#define COPY_KERNELS(T, NAME)                                                                \
    extern "C" __global__ void copy_strided_##NAME(unsigned int n, const T *src, Strided s,  \
                                                   T *out) {                                 \
        FOR_EACH_INDEX(i, n) out[i] = src[strided_offset(s, i)];                             \
    }                                                                                        \
    extern "C" __global__ void copy_into_strided_##NAME(unsigned int n, const T *src,        \
                                                        Strided s, T *dst) {                 \
        FOR_EACH_INDEX(i, n) dst[strided_offset(s, i)] = src[i];                             \
    }

COPY_KERNELS(float, f32)
COPY_KERNELS(double, f64)
COPY_KERNELS(__nv_bfloat16, bf16)
COPY_KERNELS(__half, f16)
COPY_KERNELS(unsigned int, u32)
COPY_KERNELS(unsigned char, u8)

// Every storage type to f64 and back.
__device__ __forceinline__ double to_f64(float x) { return (double)x; }
__device__ __forceinline__ double to_f64(double x) { return x; }
__device__ __forceinline__ double to_f64(__nv_bfloat16 x) { return (double)__bfloat162float(x); }
__device__ __forceinline__ double to_f64(__half x) { return (double)__half2float(x); }
__device__ __forceinline__ double to_f64(unsigned int x) { return (double)x; }
__device__ __forceinline__ double to_f64(unsigned char x) { return (double)x; }

template <typename T> __device__ __forceinline__ T from_f64(double x);
template <> __device__ __forceinline__ float from_f64<float>(double x) { return (float)x; }
template <> __device__ __forceinline__ double from_f64<double>(double x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f64<__nv_bfloat16>(double x) {
    return __double2bfloat16(x);
}
template <> __device__ __forceinline__ __half from_f64<__half>(double x) {
    return __double2half(x);
}
// Saturating and NaN -> 0, spelled out so the result does not depend on the hardware.
template <> __device__ __forceinline__ unsigned int from_f64<unsigned int>(double x) {
    if (!(x > 0.0)) return 0u;
    return x >= 4294967295.0 ? 4294967295u : (unsigned int)x;
}
template <> __device__ __forceinline__ unsigned char from_f64<unsigned char>(double x) {
    if (!(x > 0.0)) return 0;
    return x >= 255.0 ? 255 : (unsigned char)x;
}

template <typename S, typename D>
__device__ void cast(unsigned int n, const S *src, D *out) {
    FOR_EACH_INDEX(i, n) out[i] = from_f64<D>(to_f64(src[i]));
}

#define CAST_KERNEL(S, SN, D, DN)                                                              \
    extern "C" __global__ void cast_##SN##_##DN(unsigned int n, const S *src, D *out) {        \
        cast<S, D>(n, src, out);                                                               \
    }
// From S to each of the five other storage types: the 30 ordered pairs of distinct types
// (`to_dtype` to the same dtype returns the tensor itself).
#define CAST_FROM(S, SN, D1, N1, D2, N2, D3, N3, D4, N4, D5, N5)                               \
    CAST_KERNEL(S, SN, D1, N1) CAST_KERNEL(S, SN, D2, N2) CAST_KERNEL(S, SN, D3, N3)           \
    CAST_KERNEL(S, SN, D4, N4) CAST_KERNEL(S, SN, D5, N5)

CAST_FROM(float, f32, double, f64, __nv_bfloat16, bf16, __half, f16, unsigned int, u32,
          unsigned char, u8)
CAST_FROM(double, f64, float, f32, __nv_bfloat16, bf16, __half, f16, unsigned int, u32,
          unsigned char, u8)
CAST_FROM(__nv_bfloat16, bf16, float, f32, double, f64, __half, f16, unsigned int, u32,
          unsigned char, u8)
CAST_FROM(__half, f16, float, f32, double, f64, __nv_bfloat16, bf16, unsigned int, u32,
          unsigned char, u8)
CAST_FROM(unsigned int, u32, float, f32, double, f64, __nv_bfloat16, bf16, __half, f16,
          unsigned char, u8)
CAST_FROM(unsigned char, u8, float, f32, double, f64, __nv_bfloat16, bf16, __half, f16,
          unsigned int, u32)
