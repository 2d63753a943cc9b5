// layernorm.cu: layer normalisation over the last dim of a contiguous [rows, cols] tensor,
// fused with a per-group affine map, forward and backward. Plain layer norm (one group:
// weight, bias) and adaLN's modulate (a group per sequence: weight·(1 + scale), shift) are both
// this kernel.
//
//   y = x̂ · mul[g] + add[g],  x̂ = (x − mean) · rstd,  rstd = 1 / sqrt(var + eps) (biased var),
//   where row r belongs to group g = r / rows_per_group; mul and add are [groups, cols].
//
// Mapping. Forward and dx: one block per row (grid = rows, blocks of 256 threads), block-wide
// sums for the mean, the variance (two passes over the row, so no cancellation) and, in the
// backward, mean(g) and mean(g·x̂). The column sums Σ dy·x̂ and Σ dy per group take two
// kernels and no atomics, so they are deterministic: `partials` gives each block a chunk of at
// most `chunk` rows of one group and a column per thread (grid = (chunks, ceil(cols / 256)));
// `sums` adds a group's chunk partials, a thread per (group, column). mean, rstd and the
// partials are f32 whatever the storage type of x.

template <typename T>
__device__ void row_stats(unsigned int cols, const T *row, float eps, float *scratch,
                          float *mean_out, float *rstd_out) {
    float s = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) s += to_f32(row[j]);
    float mean = block_sum(s, scratch) / (float)cols;
    float v = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float d = to_f32(row[j]) - mean;
        v += d * d;
    }
    float var = block_sum(v, scratch) / (float)cols;
    *mean_out = mean;
    *rstd_out = rsqrtf(var + eps);
}

// x, y: [rows, cols]; mul, add: [groups, cols]; mean, rstd: [rows] f32.
template <typename T>
__device__ void norm_affine(unsigned int cols, unsigned int rows_per_group, float eps,
                            const T *x, const T *mul, const T *add, T *y, float *mean,
                            float *rstd) {
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * cols;
    size_t group = (size_t)(blockIdx.x / rows_per_group) * cols;
    float m, r;
    row_stats(cols, x + base, eps, scratch, &m, &r);
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = (to_f32(x[base + j]) - m) * r;
        y[base + j] = from_f32<T>(v * to_f32(mul[group + j]) + to_f32(add[group + j]));
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = m;
        rstd[blockIdx.x] = r;
    }
}

// dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), with g = dy · mul[group].
template <typename T>
__device__ void norm_affine_backward_dx(unsigned int cols, unsigned int rows_per_group,
                                        const T *x, const T *mul, const float *mean,
                                        const float *rstd, const T *dy, T *dx) {
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * cols;
    size_t group = (size_t)(blockIdx.x / rows_per_group) * cols;
    float m = mean[blockIdx.x], r = rstd[blockIdx.x];
    float sg = 0.0f, sgx = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float xhat = (to_f32(x[base + j]) - m) * r;
        float g = to_f32(dy[base + j]) * to_f32(mul[group + j]);
        sg += g;
        sgx += g * xhat;
    }
    float mean_g = block_sum(sg, scratch) / (float)cols;
    float mean_gx = block_sum(sgx, scratch) / (float)cols;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float xhat = (to_f32(x[base + j]) - m) * r;
        float g = to_f32(dy[base + j]) * to_f32(mul[group + j]);
        dx[base + j] = from_f32<T>(r * (g - mean_g - xhat * mean_gx));
    }
}

// Chunk c = blockIdx.x covers rows [g·rows_per_group + k·chunk, +chunk) of group
// g = c / chunks_per_group, k = c % chunks_per_group, clipped to the group. Writes
// part_xhat[c, j] = Σ dy·x̂ and part_dy[c, j] = Σ dy over those rows, column j per thread.
template <typename T>
__device__ void norm_affine_backward_partials(unsigned int cols, unsigned int rows_per_group,
                                              unsigned int chunk,
                                              unsigned int chunks_per_group, const T *x,
                                              const float *mean, const float *rstd,
                                              const T *dy, float *part_xhat, float *part_dy) {
    unsigned int j = blockIdx.y * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    unsigned int g = blockIdx.x / chunks_per_group, k = blockIdx.x % chunks_per_group;
    unsigned int begin = g * rows_per_group + k * chunk;
    unsigned int end = min(begin + chunk, (g + 1) * rows_per_group);
    float sx = 0.0f, sd = 0.0f;
    for (unsigned int r = begin; r < end; ++r) {
        size_t i = (size_t)r * cols + j;
        float d = to_f32(dy[i]);
        sx += d * (to_f32(x[i]) - mean[r]) * rstd[r];
        sd += d;
    }
    part_xhat[(size_t)blockIdx.x * cols + j] = sx;
    part_dy[(size_t)blockIdx.x * cols + j] = sd;
}

// sum_xhat[g, j] = Σ_k part_xhat[g·chunks_per_group + k, j], likewise sum_dy; n = groups·cols.
template <typename T>
__device__ void norm_affine_backward_sums(unsigned int n, unsigned int cols,
                                          unsigned int chunks_per_group,
                                          const float *part_xhat, const float *part_dy,
                                          T *sum_xhat, T *sum_dy) {
    FOR_EACH_INDEX(i, n) {
        unsigned int g = i / cols, j = i % cols;
        float sx = 0.0f, sd = 0.0f;
        for (unsigned int k = 0; k < chunks_per_group; ++k) {
            size_t p = ((size_t)g * chunks_per_group + k) * cols + j;
            sx += part_xhat[p];
            sd += part_dy[p];
        }
        sum_xhat[i] = from_f32<T>(sx);
        sum_dy[i] = from_f32<T>(sd);
    }
}

#define LAYER_NORM_KERNELS(T, NAME)                                                            \
    extern "C" __global__ void norm_affine_##NAME(                                             \
        unsigned int cols, unsigned int rows_per_group, float eps, const T *x, const T *mul,  \
        const T *add, T *y, float *mean, float *rstd) {                                        \
        norm_affine<T>(cols, rows_per_group, eps, x, mul, add, y, mean, rstd);                 \
    }                                                                                          \
    extern "C" __global__ void norm_affine_backward_dx_##NAME(                                 \
        unsigned int cols, unsigned int rows_per_group, const T *x, const T *mul,              \
        const float *mean, const float *rstd, const T *dy, T *dx) {                            \
        norm_affine_backward_dx<T>(cols, rows_per_group, x, mul, mean, rstd, dy, dx);          \
    }                                                                                          \
    extern "C" __global__ void norm_affine_backward_partials_##NAME(                           \
        unsigned int cols, unsigned int rows_per_group, unsigned int chunk,                    \
        unsigned int chunks_per_group, const T *x, const float *mean, const float *rstd,       \
        const T *dy, float *part_xhat, float *part_dy) {                                       \
        norm_affine_backward_partials<T>(cols, rows_per_group, chunk, chunks_per_group, x,     \
                                         mean, rstd, dy, part_xhat, part_dy);                  \
    }                                                                                          \
    extern "C" __global__ void norm_affine_backward_sums_##NAME(                               \
        unsigned int n, unsigned int cols, unsigned int chunks_per_group,                      \
        const float *part_xhat, const float *part_dy, T *sum_xhat, T *sum_dy) {                \
        norm_affine_backward_sums<T>(n, cols, chunks_per_group, part_xhat, part_dy, sum_xhat,  \
                                     sum_dy);                                                  \
    }

LAYER_NORM_KERNELS(float, f32)
LAYER_NORM_KERNELS(__nv_bfloat16, bf16)
