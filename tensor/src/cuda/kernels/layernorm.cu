// layernorm.cu: layer normalisation over the last dim of a contiguous [rows, cols] tensor,
// forward (optionally fused with adaLN's modulate) and backward.
//
//   y = (x − mean) · rstd · w (+ b),   rstd = 1 / sqrt(var + eps), biased variance;
//   modulate: y = LN(x) · (1 + scale[r / rows_per_batch]) + shift[r / rows_per_batch].
//
// Mapping, forward and dx: one block per row (grid = rows, blocks of 256 threads), block-wide
// sums for the mean, the variance (two passes over the row, so no cancellation) and, in the
// backward, mean(g) and mean(g·x̂). The parameter gradients use a second kernel with one thread
// per column looping over the rows (no atomics, so the sums are deterministic). mean and rstd
// are f32 [rows] whatever the storage type of x.

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

// x, y: [rows, cols]; w, b: [cols] (b is read only when has_bias); mean, rstd: [rows] f32.
template <typename T>
__device__ void layer_norm(unsigned int cols, float eps, const T *x, const T *w, int has_bias,
                           const T *b, T *y, float *mean, float *rstd) {
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * cols;
    float m, r;
    row_stats(cols, x + base, eps, scratch, &m, &r);
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = (to_f32(x[base + j]) - m) * r * to_f32(w[j]);
        if (has_bias) v += to_f32(b[j]);
        y[base + j] = from_f32<T>(v);
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = m;
        rstd[blockIdx.x] = r;
    }
}

// Layer norm without affine parameters, then adaLN's modulate: shift and scale are [B, cols]
// and row r uses entry r / rows_per_batch.
template <typename T>
__device__ void layer_norm_modulate(unsigned int cols, unsigned int rows_per_batch, float eps,
                                    const T *x, const T *shift, const T *scale, T *y,
                                    float *mean, float *rstd) {
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * cols;
    size_t cond = (size_t)(blockIdx.x / rows_per_batch) * cols;
    float m, r;
    row_stats(cols, x + base, eps, scratch, &m, &r);
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float v = (to_f32(x[base + j]) - m) * r;
        y[base + j] = from_f32<T>(v * (1.0f + to_f32(scale[cond + j])) + to_f32(shift[cond + j]));
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = m;
        rstd[blockIdx.x] = r;
    }
}

// dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), with x̂ = (x − mean)·rstd and g = dy·w.
template <typename T>
__device__ void layer_norm_backward_dx(unsigned int cols, const T *x, const T *w,
                                       const float *mean, const float *rstd, const T *dy,
                                       T *dx) {
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * cols;
    float m = mean[blockIdx.x], r = rstd[blockIdx.x];
    float sg = 0.0f, sgx = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float xhat = (to_f32(x[base + j]) - m) * r;
        float g = to_f32(dy[base + j]) * to_f32(w[j]);
        sg += g;
        sgx += g * xhat;
    }
    float mean_g = block_sum(sg, scratch) / (float)cols;
    float mean_gx = block_sum(sgx, scratch) / (float)cols;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float xhat = (to_f32(x[base + j]) - m) * r;
        float g = to_f32(dy[base + j]) * to_f32(w[j]);
        dx[base + j] = from_f32<T>(r * (g - mean_g - xhat * mean_gx));
    }
}

// dw[j] = Σ_rows dy·x̂, db[j] = Σ_rows dy: one thread per column (grid-stride over columns).
template <typename T>
__device__ void layer_norm_backward_params(unsigned int rows, unsigned int cols, const T *x,
                                           const float *mean, const float *rstd, const T *dy,
                                           T *dw, T *db) {
    FOR_EACH_INDEX(j, cols) {
        float sw = 0.0f, sb = 0.0f;
        for (unsigned int r = 0; r < rows; ++r) {
            size_t k = (size_t)r * cols + j;
            float d = to_f32(dy[k]);
            sw += d * (to_f32(x[k]) - mean[r]) * rstd[r];
            sb += d;
        }
        dw[j] = from_f32<T>(sw);
        db[j] = from_f32<T>(sb);
    }
}

#define LAYER_NORM_KERNELS(T, NAME)                                                            \
    extern "C" __global__ void layer_norm_##NAME(unsigned int cols, float eps, const T *x,     \
                                                 const T *w, int has_bias, const T *b, T *y,   \
                                                 float *mean, float *rstd) {                   \
        layer_norm<T>(cols, eps, x, w, has_bias, b, y, mean, rstd);                            \
    }                                                                                          \
    extern "C" __global__ void layer_norm_modulate_##NAME(                                     \
        unsigned int cols, unsigned int rows_per_batch, float eps, const T *x,                 \
        const T *shift, const T *scale, T *y, float *mean, float *rstd) {                      \
        layer_norm_modulate<T>(cols, rows_per_batch, eps, x, shift, scale, y, mean, rstd);     \
    }                                                                                          \
    extern "C" __global__ void layer_norm_backward_dx_##NAME(                                  \
        unsigned int cols, const T *x, const T *w, const float *mean, const float *rstd,       \
        const T *dy, T *dx) {                                                                  \
        layer_norm_backward_dx<T>(cols, x, w, mean, rstd, dy, dx);                             \
    }                                                                                          \
    extern "C" __global__ void layer_norm_backward_params_##NAME(                              \
        unsigned int rows, unsigned int cols, const T *x, const float *mean,                   \
        const float *rstd, const T *dy, T *dw, T *db) {                                        \
        layer_norm_backward_params<T>(rows, cols, x, mean, rstd, dy, dw, db);                  \
    }

LAYER_NORM_KERNELS(float, f32)
LAYER_NORM_KERNELS(__nv_bfloat16, bf16)
