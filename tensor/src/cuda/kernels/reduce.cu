// reduce.cu: sum / max / min and argmax over the last dim of a contiguous [rows, cols] tensor.
// (The Rust side moves any other dim last with permute + contiguous first.)
//
// Mapping: one block per row (grid = rows, blocks of 256 threads). Each thread folds the
// columns j ≡ threadIdx.x (mod blockDim.x), then the block combines the partial results in
// shared memory. Accumulation is in f32 whatever the storage type.

// 0 sum, 1 max, 2 min (the order of `ReduceOp`).
template <typename T>
__device__ void reduce_last(int op, unsigned int cols, const T *x, T *out) {
    __shared__ float scratch[32];
    const T *row = x + (size_t)blockIdx.x * cols;
    float acc = op == 0 ? 0.0f : (op == 1 ? NEG_INF : -NEG_INF);
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = to_f32(row[j]);
        acc = op == 0 ? acc + v : (op == 1 ? fmaxf(acc, v) : fminf(acc, v));
    }
    float r;
    if (op == 0) r = block_sum(acc, scratch);
    else if (op == 1) r = block_max(acc, scratch);
    else r = -block_max(-acc, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = from_f32<T>(r);
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

#define REDUCE_KERNELS(T, NAME)                                                             \
    extern "C" __global__ void reduce_last_##NAME(int op, unsigned int cols, const T *x,    \
                                                  T *out) {                                 \
        reduce_last<T>(op, cols, x, out);                                                   \
    }                                                                                       \
    extern "C" __global__ void argmax_last_##NAME(unsigned int cols, const T *x,            \
                                                  unsigned int *out) {                      \
        argmax_last<T>(cols, x, out);                                                       \
    }

REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(__nv_bfloat16, bf16)
