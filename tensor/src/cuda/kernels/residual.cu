// residual.cu: the gated residual of a DiT block, y = h + gate[g] ⊙ dropout(branch), and its
// backward, with the dropout mask recomputed from its noise stream instead of stored.
//
// h, branch, dy, y, d_branch: contiguous [rows, cols]; row r belongs to group
// g = r / rows_per_group and uses gate [groups, cols] row g. Element i keeps its branch value
// when `draw_uniform(key, i)` ≥ p (as `Tensor::dropout_mask`), scaled by `scale` = 1/(1 − p);
// without dropout (has_dropout = 0) every factor is 1.
//
// Mapping: forward and d_branch, one thread per element in a grid-stride loop. d_gate, the
// column sums Σ dy·dropout(branch) per group, as in layernorm.cu: partial sums over chunks of
// at most `chunk` rows of one group (grid = (chunks, ceil(cols / 256)), a column per thread),
// then a thread per (group, column) adds its chunks. No atomics: deterministic.

__device__ __forceinline__ float dropout_factor(int has_dropout, double p, float scale,
                                                unsigned long long key, unsigned int i) {
    return !has_dropout ? 1.0f : (draw_uniform(key, i) >= p ? scale : 0.0f);
}

template <typename T>
__device__ void gated_residual(unsigned int n, unsigned int cols, unsigned int rows_per_group,
                               int has_dropout, double p, float scale, unsigned long long key,
                               const T *h, const T *gate, const T *branch, T *y) {
    FOR_EACH_INDEX(i, n) {
        unsigned int g = i / cols / rows_per_group, j = i % cols;
        float f = dropout_factor(has_dropout, p, scale, key, i);
        y[i] = from_f32<T>(to_f32(h[i]) + to_f32(gate[g * cols + j]) * to_f32(branch[i]) * f);
    }
}

template <typename T>
__device__ void gated_residual_backward_branch(unsigned int n, unsigned int cols,
                                               unsigned int rows_per_group, int has_dropout,
                                               double p, float scale, unsigned long long key,
                                               const T *gate, const T *dy, T *d_branch) {
    FOR_EACH_INDEX(i, n) {
        unsigned int g = i / cols / rows_per_group, j = i % cols;
        float f = dropout_factor(has_dropout, p, scale, key, i);
        d_branch[i] = from_f32<T>(to_f32(dy[i]) * to_f32(gate[g * cols + j]) * f);
    }
}

// Chunk c = blockIdx.x: rows [g·rows_per_group + k·chunk, +chunk) of group
// g = c / chunks_per_group, k = c % chunks_per_group, clipped to the group.
template <typename T>
__device__ void gated_residual_backward_gate_partials(
    unsigned int cols, unsigned int rows_per_group, unsigned int chunk,
    unsigned int chunks_per_group, int has_dropout, double p, float scale,
    unsigned long long key, const T *branch, const T *dy, float *part) {
    unsigned int j = blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    unsigned int g = blockIdx.x / chunks_per_group, k = blockIdx.x % chunks_per_group;
    unsigned int begin = g * rows_per_group + k * chunk;
    unsigned int end = min(begin + chunk, (g + 1) * rows_per_group);
    float s = 0.0f;
    for (unsigned int r = begin; r < end; ++r) {
        unsigned int i = r * cols + j;
        s += to_f32(dy[i]) * to_f32(branch[i]) * dropout_factor(has_dropout, p, scale, key, i);
    }
    part[(size_t)blockIdx.x * cols + j] = s;
}

// d_gate[g, j] = Σ_k part[g·chunks_per_group + k, j]; n = groups·cols.
template <typename T>
__device__ void gated_residual_backward_gate_sums(unsigned int n, unsigned int cols,
                                                  unsigned int chunks_per_group,
                                                  const float *part, T *d_gate) {
    FOR_EACH_INDEX(i, n) {
        unsigned int g = i / cols, j = i % cols;
        float s = 0.0f;
        for (unsigned int k = 0; k < chunks_per_group; ++k)
            s += part[((size_t)g * chunks_per_group + k) * cols + j];
        d_gate[i] = from_f32<T>(s);
    }
}

#define RESIDUAL_KERNELS(T, NAME)                                                              \
    extern "C" __global__ void gated_residual_##NAME(                                          \
        unsigned int n, unsigned int cols, unsigned int rows_per_group, int has_dropout,      \
        double p, float scale, unsigned long long key, const T *h, const T *gate,              \
        const T *branch, T *y) {                                                               \
        gated_residual<T>(n, cols, rows_per_group, has_dropout, p, scale, key, h, gate,        \
                          branch, y);                                                          \
    }                                                                                          \
    extern "C" __global__ void gated_residual_backward_branch_##NAME(                          \
        unsigned int n, unsigned int cols, unsigned int rows_per_group, int has_dropout,      \
        double p, float scale, unsigned long long key, const T *gate, const T *dy,             \
        T *d_branch) {                                                                         \
        gated_residual_backward_branch<T>(n, cols, rows_per_group, has_dropout, p, scale, key, \
                                          gate, dy, d_branch);                                 \
    }                                                                                          \
    extern "C" __global__ void gated_residual_backward_gate_partials_##NAME(                   \
        unsigned int cols, unsigned int rows_per_group, unsigned int chunk,                    \
        unsigned int chunks_per_group, int has_dropout, double p, float scale,                 \
        unsigned long long key, const T *branch, const T *dy, float *part) {                   \
        gated_residual_backward_gate_partials<T>(cols, rows_per_group, chunk,                  \
                                                 chunks_per_group, has_dropout, p, scale, key, \
                                                 branch, dy, part);                            \
    }                                                                                          \
    extern "C" __global__ void gated_residual_backward_gate_sums_##NAME(                       \
        unsigned int n, unsigned int cols, unsigned int chunks_per_group, const float *part,   \
        T *d_gate) {                                                                           \
        gated_residual_backward_gate_sums<T>(n, cols, chunks_per_group, part, d_gate);         \
    }

RESIDUAL_KERNELS(float, f32)
RESIDUAL_KERNELS(__nv_bfloat16, bf16)
