// sample.cu: draws from counter-based noise (`draw_uniform` of common.cuh, the CPU's noise bit
// for bit) on the device: one Gumbel-max draw per row of log-probabilities (a sampler copies
// one token id per row to the host instead of the row's V probabilities), and dropout masks
// (a training step draws no noise on the host).
//
// Gumbel-max: row r draws argmax_i exp(lp_i) / (−log(u_i + 1e-10) + 1e-10) in f64, where u_i
// is the i-th uniform of the stream key = SplitMix64(seed ^ r·0xD605BBB58C8ABBDB). Ties go to
// the first index. One block per row (grid = rows, blocks of exactly 256 threads, the size of
// the shared arrays); threads stride over the ids, then a tree combine keeps the best.
//
// Dropout: element i of the mask is `scale` when the i-th uniform of `key` is ≥ p, else 0. One
// thread per element in a grid-stride loop.

template <typename T>
__device__ void gumbel_argmax_row(unsigned int cols, unsigned long long seed, const T *lp,
                                  unsigned int *out) {
    __shared__ double best_s[256];
    __shared__ unsigned int best_i[256];
    const T *row = lp + (size_t)blockIdx.x * cols;
    unsigned long long key = splitmix64(seed ^ (blockIdx.x * 0xD605BBB58C8ABBDBull));
    double bs = __longlong_as_double(0xfff0000000000000ull);  // −∞
    unsigned int bi = 0;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        double exponential = -log(draw_uniform(key, j) + 1e-10) + 1e-10;
        double s = exp((double)to_f32(row[j])) / exponential;
        if (s > bs) {
            bs = s;
            bi = j;
        }
    }
    best_s[threadIdx.x] = bs;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    // Tree combine: the higher score, the smaller id on ties (a thread that saw nothing better
    // than −∞ keeps id 0 or its first id, and loses to any real score).
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            double v = best_s[threadIdx.x + s], w = best_s[threadIdx.x];
            unsigned int i = best_i[threadIdx.x + s], k = best_i[threadIdx.x];
            if (v > w || (v == w && i < k)) {
                best_s[threadIdx.x] = v;
                best_i[threadIdx.x] = i;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = best_i[0];
}

template <typename T>
__device__ void dropout_mask(unsigned int n, double p, float scale, unsigned long long key,
                             T *out) {
    FOR_EACH_INDEX(i, n) out[i] = from_f32<T>(draw_uniform(key, i) >= p ? scale : 0.0f);
}

#define SAMPLE_KERNELS(T, NAME)                                                              \
    extern "C" __global__ void gumbel_argmax_##NAME(unsigned int cols, unsigned long long seed, \
                                                    const T *lp, unsigned int *out) {        \
        gumbel_argmax_row<T>(cols, seed, lp, out);                                           \
    }                                                                                        \
    extern "C" __global__ void dropout_mask_##NAME(unsigned int n, double p, float scale,    \
                                                   unsigned long long key, T *out) {         \
        dropout_mask<T>(n, p, scale, key, out);                                              \
    }

SAMPLE_KERNELS(float, f32)
SAMPLE_KERNELS(__nv_bfloat16, bf16)
