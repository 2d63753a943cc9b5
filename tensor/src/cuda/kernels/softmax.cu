// softmax.cu: softmax and log-softmax over the last dim, fused (max, sum of exponentials and
// the normalised output in one kernel), and their backward.
//
// Mapping: one block per row of a contiguous [rows, cols] tensor (grid = rows, blocks of 256
// threads); threads stride over the columns and combine with block-wide max and sum. Compute in
// f32. A row that is −∞ everywhere gives zeros (softmax) or −∞ (log-softmax), as on the CPU.

template <typename T>
__device__ void softmax_rows(int log_out, unsigned int cols, const T *x, T *y) {
    __shared__ float scratch[32];
    const T *row = x + (size_t)blockIdx.x * cols;
    T *out = y + (size_t)blockIdx.x * cols;
    float m = NEG_INF;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, to_f32(row[j]));
    m = block_max(m, scratch);
    if (m == NEG_INF) {
        for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x)
            out[j] = from_f32<T>(log_out ? NEG_INF : 0.0f);
        return;
    }
    float s = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) s += expf(to_f32(row[j]) - m);
    s = block_sum(s, scratch);
    if (log_out) {
        float log_sum = logf(s) + m;
        for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x)
            out[j] = from_f32<T>(to_f32(row[j]) - log_sum);
    } else {
        float inv = 1.0f / s;
        for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x)
            out[j] = from_f32<T>(expf(to_f32(row[j]) - m) * inv);
    }
}

// From the forward output y and dy, per row:
//   softmax:     dx = y · (dy − Σ dy·y)
//   log-softmax: dx = dy − exp(y) · Σ dy
template <typename T>
__device__ void softmax_rows_backward(int log_out, unsigned int cols, const T *y, const T *dy,
                                      T *dx) {
    __shared__ float scratch[32];
    size_t base = (size_t)blockIdx.x * cols;
    float s = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float d = to_f32(dy[base + j]);
        s += log_out ? d : d * to_f32(y[base + j]);
    }
    s = block_sum(s, scratch);
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float yj = to_f32(y[base + j]), d = to_f32(dy[base + j]);
        dx[base + j] = from_f32<T>(log_out ? d - expf(yj) * s : yj * (d - s));
    }
}

#define SOFTMAX_KERNELS(T, NAME)                                                             \
    extern "C" __global__ void softmax_##NAME(int log_out, unsigned int cols, const T *x,    \
                                              T *y) {                                        \
        softmax_rows<T>(log_out, cols, x, y);                                                \
    }                                                                                        \
    extern "C" __global__ void softmax_backward_##NAME(int log_out, unsigned int cols,       \
                                                       const T *y, const T *dy, T *dx) {     \
        softmax_rows_backward<T>(log_out, cols, y, dy, dx);                                  \
    }

SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(__nv_bfloat16, bf16)
