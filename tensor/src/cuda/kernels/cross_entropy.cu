// cross_entropy.cu: log-softmax and the target's negative log-likelihood fused, and the
// gradient with respect to the logits, for the training losses (the [rows, cols]
// log-probabilities are never written).
//
// Per row x of a contiguous [rows, cols] logits matrix, with target t and an excluded class e
// (excluded < 0: none) whose logit counts as −∞:
//   lse = log Σ_{j ≠ e} exp(x_j),  nll = lse − x_t (+∞ when t = e; NaN when t ≥ cols),
//   dx_j = dnll · (exp(x_j − lse) − [j = t]),  dx_e = 0.
// nll, lse and dnll are f32 [rows] whatever the storage type of x; dx has x's type.
//
// Mapping: one block per row (grid = rows, blocks of 256 threads); threads stride over the
// columns and combine with block-wide max and sum. Compute in f32.

template <typename T>
__device__ void cross_entropy_row(unsigned int cols, int excluded, const T *x,
                                  const unsigned int *targets, float *nll, float *lse) {
    __shared__ float scratch[32];
    const T *row = x + (size_t)blockIdx.x * cols;
    float m = NEG_INF;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x)
        if ((int)j != excluded) m = fmaxf(m, to_f32(row[j]));
    m = block_max(m, scratch);
    float s = 0.0f;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x)
        if ((int)j != excluded) s += expf(to_f32(row[j]) - m);
    s = block_sum(s, scratch);
    if (threadIdx.x == 0) {
        float l = logf(s) + m;
        unsigned int t = targets[blockIdx.x];
        float out;
        if ((int)t == excluded) out = -NEG_INF;
        else if (t >= cols) out = __int_as_float(0x7fc00000);  // NaN: the loss check reports it
        else out = l - to_f32(row[t]);
        lse[blockIdx.x] = l;
        nll[blockIdx.x] = out;
    }
}

template <typename T>
__device__ void cross_entropy_row_backward(unsigned int cols, int excluded, const T *x,
                                           const unsigned int *targets, const float *lse,
                                           const float *dnll, T *dx) {
    size_t base = (size_t)blockIdx.x * cols;
    float l = lse[blockIdx.x], g = dnll[blockIdx.x];
    unsigned int t = targets[blockIdx.x];
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        float d = (int)j == excluded ? 0.0f : g * (expf(to_f32(x[base + j]) - l) - (j == t));
        dx[base + j] = from_f32<T>(d);
    }
}

#define CROSS_ENTROPY_KERNELS(T, NAME)                                                       \
    extern "C" __global__ void cross_entropy_##NAME(unsigned int cols, int excluded,         \
                                                    const T *x, const unsigned int *targets, \
                                                    float *nll, float *lse) {                \
        cross_entropy_row<T>(cols, excluded, x, targets, nll, lse);                          \
    }                                                                                        \
    extern "C" __global__ void cross_entropy_backward_##NAME(                                \
        unsigned int cols, int excluded, const T *x, const unsigned int *targets,            \
        const float *lse, const float *dnll, T *dx) {                                        \
        cross_entropy_row_backward<T>(cols, excluded, x, targets, lse, dnll, dx);            \
    }

CROSS_ENTROPY_KERNELS(float, f32)
CROSS_ENTROPY_KERNELS(__nv_bfloat16, bf16)
