// reduce.cu: sum / max / min over one dim of a contiguous tensor, and argmax over the last.
// Accumulation is in f32 whatever the storage type. Op codes: 0 sum, 1 max, 2 min (the order
// of `ReduceOp`).
//
// Over the last dim ([rows, cols]): one block per row (grid = rows, blocks of 256 threads).
// Each thread folds the columns j ≡ threadIdx.x (mod blockDim.x), then the block combines the
// partial results in shared memory. Few long rows are first split into segments (below).
//
// Over another dim, x viewed as [outer, size, inner] and reduced over `size` in place (no
// transposed copy), in two deterministic steps: `reduce_mid_partials` folds chunks of at most
// `chunk` rows, block x = o·chunks + k for chunk k of outer entry o and a column per thread
// (grid = (outer·chunks, ceil(inner / 256))), into f32 partials [outer·chunks, inner]; then
// `reduce_mid_finish` folds each column's `chunks` partials, a thread per (o, column).

__device__ __forceinline__ float fold_init(int op) {
    return op == 0 ? 0.0f : (op == 1 ? NEG_INF : -NEG_INF);
}
__device__ __forceinline__ float fold(int op, float acc, float v) {
    return op == 0 ? acc + v : (op == 1 ? fmaxf(acc, v) : fminf(acc, v));
}

// Folds `acc` over the block (every thread gets the result).
__device__ __forceinline__ float block_fold(int op, float acc, float *scratch) {
    if (op == 0) return block_sum(acc, scratch);
    if (op == 1) return block_max(acc, scratch);
    return -block_max(-acc, scratch);
}

// In, Out: the storage types of x and out (`reduce_last_finish` reads f32 partials).
template <typename In, typename Out>
__device__ void reduce_last(int op, unsigned int cols, const In *x, Out *out) {
    __shared__ float scratch[32];
    const In *row = x + (size_t)blockIdx.x * cols;
    float acc = fold_init(op);
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x)
        acc = fold(op, acc, to_f32(row[j]));
    float r = block_fold(op, acc, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = from_f32<Out>(r);
}

// Few long rows (a full reduction, a gradient's squared norm): block (r, s) folds columns
// [s·seg, (s + 1)·seg) of row r into part[r·gridDim.y + s]; `reduce_last_finish` then folds
// each row's partials. More blocks than rows keep the whole GPU busy.
template <typename T>
__device__ void reduce_last_partials(int op, unsigned int cols, unsigned int seg, const T *x,
                                     float *part) {
    __shared__ float scratch[32];
    const T *row = x + (size_t)blockIdx.x * cols;
    unsigned int begin = blockIdx.y * seg, end = min(begin + seg, cols);
    float acc = fold_init(op);
    for (unsigned int j = begin + threadIdx.x; j < end; j += blockDim.x)
        acc = fold(op, acc, to_f32(row[j]));
    float r = block_fold(op, acc, scratch);
    if (threadIdx.x == 0) part[(size_t)blockIdx.x * gridDim.y + blockIdx.y] = r;
}

// Index of the largest entry of each row; ties go to the first index and NaN counts as larger
// than everything (the first NaN wins), as the CPU's `argmax`.
template <typename T>
__device__ void argmax_last(unsigned int cols, const T *x, unsigned int *out) {
    __shared__ float best_v[256];
    __shared__ unsigned int best_i[256];
    const T *row = x + (size_t)blockIdx.x * cols;
    float bv = NEG_INF;
    unsigned int bi = 0xffffffffu;  // "no entry seen yet"
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = to_f32(row[j]);
        bool v_nan = v != v, b_nan = bv != bv;
        if (bi == 0xffffffffu || (v_nan && !b_nan) || (!b_nan && v > bv)) {
            bv = v;
            bi = j;
        }
    }
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    // Tree combine: the better of two candidates, the smaller index on ties.
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float v = best_v[threadIdx.x + s], w = best_v[threadIdx.x];
            unsigned int i = best_i[threadIdx.x + s], k = best_i[threadIdx.x];
            bool take;
            if (i == 0xffffffffu) take = false;
            else if (k == 0xffffffffu) take = true;
            else if ((v != v) != (w != w)) take = v != v;  // exactly one NaN: it wins
            else if (v != v || v == w) take = i < k;       // both NaN, or equal: first index
            else take = v > w;
            if (take) {
                best_v[threadIdx.x] = v;
                best_i[threadIdx.x] = i;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = best_i[0];
}

template <typename T>
__device__ void reduce_mid_partials(int op, unsigned int size, unsigned int inner,
                                    unsigned int chunk, unsigned int chunks, const T *x,
                                    float *part) {
    unsigned int j = blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= inner) return;
    unsigned int o = blockIdx.x / chunks, k = blockIdx.x % chunks;
    unsigned int begin = k * chunk, end = min(begin + chunk, size);
    const T *base = x + (size_t)o * size * inner + j;
    float acc = fold_init(op);
    for (unsigned int s = begin; s < end; ++s)
        acc = fold(op, acc, to_f32(base[(size_t)s * inner]));
    part[(size_t)blockIdx.x * inner + j] = acc;
}

// out[o, j] = fold over k of part[o·chunks + k, j]; n = outer·inner.
template <typename T>
__device__ void reduce_mid_finish(int op, unsigned int n, unsigned int inner,
                                  unsigned int chunks, const float *part, T *out) {
    FOR_EACH_INDEX(i, n) {
        unsigned int o = i / inner, j = i % inner;
        float acc = fold_init(op);
        for (unsigned int k = 0; k < chunks; ++k)
            acc = fold(op, acc, part[((size_t)o * chunks + k) * inner + j]);
        out[i] = from_f32<T>(acc);
    }
}

#define REDUCE_KERNELS(T, NAME)                                                             \
    extern "C" __global__ void reduce_last_##NAME(int op, unsigned int cols, const T *x,    \
                                                  T *out) {                                 \
        reduce_last<T, T>(op, cols, x, out);                                                \
    }                                                                                       \
    extern "C" __global__ void reduce_last_partials_##NAME(int op, unsigned int cols,       \
                                                           unsigned int seg, const T *x,    \
                                                           float *part) {                   \
        reduce_last_partials<T>(op, cols, seg, x, part);                                    \
    }                                                                                       \
    extern "C" __global__ void reduce_last_finish_##NAME(int op, unsigned int cols,         \
                                                         const float *part, T *out) {       \
        reduce_last<float, T>(op, cols, part, out);                                         \
    }                                                                                       \
    extern "C" __global__ void argmax_last_##NAME(unsigned int cols, const T *x,            \
                                                  unsigned int *out) {                      \
        argmax_last<T>(cols, x, out);                                                       \
    }                                                                                       \
    extern "C" __global__ void reduce_mid_partials_##NAME(                                  \
        int op, unsigned int size, unsigned int inner, unsigned int chunk,                  \
        unsigned int chunks, const T *x, float *part) {                                     \
        reduce_mid_partials<T>(op, size, inner, chunk, chunks, x, part);                    \
    }                                                                                       \
    extern "C" __global__ void reduce_mid_finish_##NAME(int op, unsigned int n,             \
                                                        unsigned int inner,                 \
                                                        unsigned int chunks,                \
                                                        const float *part, T *out) {        \
        reduce_mid_finish<T>(op, n, inner, chunks, part, out);                              \
    }

REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(__nv_bfloat16, bf16)
