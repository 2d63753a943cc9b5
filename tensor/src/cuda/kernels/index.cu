// index.cu: index_select (embedding lookup), gather, and their adjoints index_add and
// scatter_add (atomicAdd, so repeated indices accumulate).
//
// A contiguous tensor indexed along `dim` is viewed as [outer, size, inner] around that dim.
// Indices are u32 and already checked against `size` on the host.
//
// Mapping: one thread per element of the indexed side (the output of select/gather, the source
// of the adds), in a grid-stride loop; the thread decodes (o, j, i) from its linear index.

// out[o, j, i] = x[o, ids[j], i]; out is [outer, nids, inner], n = its element count.
template <typename T>
__device__ void index_select(unsigned int n, unsigned int size, unsigned int inner,
                             unsigned int nids, const T *x, const unsigned int *ids, T *out) {
    FOR_EACH_INDEX(t, n) {
        unsigned int i = t % inner, oj = t / inner;
        unsigned int j = oj % nids, o = oj / nids;
        out[t] = x[(o * size + ids[j]) * inner + i];
    }
}

// out[o, j, i] = x[o, idx[o, j, i], i]; idx and out are [outer, nidx, inner].
template <typename T>
__device__ void gather(unsigned int n, unsigned int size, unsigned int inner, unsigned int nidx,
                       const T *x, const unsigned int *idx, T *out) {
    FOR_EACH_INDEX(t, n) {
        unsigned int i = t % inner, o = t / inner / nidx;
        out[t] = x[(o * size + idx[t]) * inner + i];
    }
}

// dst[o, ids[j], i] += src[o, j, i]; src is [outer, nids, inner].
template <typename T>
__device__ void index_add(unsigned int n, unsigned int size, unsigned int inner,
                          unsigned int nids, const unsigned int *ids, const T *src, T *dst) {
    FOR_EACH_INDEX(t, n) {
        unsigned int i = t % inner, oj = t / inner;
        unsigned int j = oj % nids, o = oj / nids;
        atomicAdd(&dst[(o * size + ids[j]) * inner + i], src[t]);
    }
}

// dst[o, idx[o, j, i], i] += src[o, j, i]; idx and src are [outer, nidx, inner].
template <typename T>
__device__ void scatter_add(unsigned int n, unsigned int size, unsigned int inner,
                            unsigned int nidx, const unsigned int *idx, const T *src, T *dst) {
    FOR_EACH_INDEX(t, n) {
        unsigned int i = t % inner, o = t / inner / nidx;
        atomicAdd(&dst[(o * size + idx[t]) * inner + i], src[t]);
    }
}

#define SELECT_KERNELS(T, NAME)                                                              \
    extern "C" __global__ void index_select_##NAME(unsigned int n, unsigned int size,        \
                                                   unsigned int inner, unsigned int nids,    \
                                                   const T *x, const unsigned int *ids,      \
                                                   T *out) {                                 \
        index_select<T>(n, size, inner, nids, x, ids, out);                                  \
    }                                                                                        \
    extern "C" __global__ void gather_##NAME(unsigned int n, unsigned int size,              \
                                             unsigned int inner, unsigned int nidx,          \
                                             const T *x, const unsigned int *idx, T *out) {  \
        gather<T>(n, size, inner, nidx, x, idx, out);                                        \
    }
#define ADD_KERNELS(T, NAME)                                                                 \
    extern "C" __global__ void index_add_##NAME(unsigned int n, unsigned int size,           \
                                                unsigned int inner, unsigned int nids,       \
                                                const unsigned int *ids, const T *src,       \
                                                T *dst) {                                    \
        index_add<T>(n, size, inner, nids, ids, src, dst);                                   \
    }                                                                                        \
    extern "C" __global__ void scatter_add_##NAME(unsigned int n, unsigned int size,         \
                                                  unsigned int inner, unsigned int nidx,     \
                                                  const unsigned int *idx, const T *src,     \
                                                  T *dst) {                                  \
        scatter_add<T>(n, size, inner, nidx, idx, src, dst);                                 \
    }

SELECT_KERNELS(float, f32)
SELECT_KERNELS(double, f64)
SELECT_KERNELS(__nv_bfloat16, bf16)
SELECT_KERNELS(__half, f16)
SELECT_KERNELS(unsigned int, u32)
SELECT_KERNELS(unsigned char, u8)
// atomicAdd exists for these (f64 from sm_60). BF16 adds run in f32 (see `index.rs`).
ADD_KERNELS(float, f32)
ADD_KERNELS(double, f64)
