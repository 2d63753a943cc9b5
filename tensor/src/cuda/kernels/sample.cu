// sample.cu: one Gumbel-max draw per row of log-probabilities, on the device, so a sampler
// copies one token id per row to the host instead of the row's V probabilities.
//
// Row r draws argmax_i exp(lp_i) / (−log(u_i + 1e-10) + 1e-10) in f64, where u_i is the i-th
// uniform of the row's counter-based stream: SplitMix64 at state key + (i + 1)·γ with
// key = SplitMix64(seed ^ r·0xD605BBB58C8ABBDB). This is `draw_key` / `draw_uniform` of
// `tensor/src/random.rs` bit for bit, so the CPU draws the same tokens. Ties go to the first
// index.
//
// Mapping: one block per row (grid = rows, blocks of exactly 256 threads, the size of the
// shared arrays); threads stride over the ids, then a tree combine keeps the best (score, id).

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

__device__ __forceinline__ unsigned long long splitmix64(unsigned long long state) {
    unsigned long long x = state + GOLDEN_GAMMA;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

template <typename T>
__device__ void gumbel_argmax_row(unsigned int cols, unsigned long long seed, const T *lp,
                                  unsigned int *out) {
    __shared__ double best_s[256];
    __shared__ unsigned int best_i[256];
    const T *row = lp + (size_t)blockIdx.x * cols;
    unsigned long long key = splitmix64(seed ^ ((unsigned long long)blockIdx.x * 0xD605BBB58C8ABBDBull));
    double bs = __longlong_as_double(0xfff0000000000000ull);  // −∞
    unsigned int bi = 0;
    for (unsigned int j = threadIdx.x; j < cols; j += blockDim.x) {
        unsigned long long bits = splitmix64(key + (unsigned long long)j * GOLDEN_GAMMA);
        double u = (double)(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
        double exponential = -log(u + 1e-10) + 1e-10;
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

#define SAMPLE_KERNELS(T, NAME)                                                              \
    extern "C" __global__ void gumbel_argmax_##NAME(unsigned int cols, unsigned long long seed, \
                                                    const T *lp, unsigned int *out) {        \
        gumbel_argmax_row<T>(cols, seed, lp, out);                                           \
    }

SAMPLE_KERNELS(float, f32)
SAMPLE_KERNELS(__nv_bfloat16, bf16)
