// attention.cu: the masked softmax of partition attention over dense scores.
//
// scores S = q·kᵀ (unscaled) is contiguous f32 [B, H, Nq, Nk]; q_groups [B, Nq] and k_groups
// [B, Nk] are u8 group ids, 255 (PAD_GROUP) for pads. Query i may see key j when neither is a
// pad and the rule holds: rule 0 (`GroupRule::Same`) q == k, rule 1 (`Different`) q != k.
// The kernel writes P = softmax_j(scale·S_ij over allowed j), 0 elsewhere, and the log-sum-exp
// lse [B, H, Nq] of the allowed scaled scores (−∞ and a zero row when no key is allowed).
// P may alias S (each element is read before it is written, by the same thread).
//
// Mapping: one block per query row r = (b·H + h)·Nq + i (grid = B·H·Nq, blocks of 256 threads);
// threads stride over the keys and combine with block-wide max and sum.

__device__ __forceinline__ bool allowed(int rule, unsigned char q, unsigned char k) {
    if (q == 255 || k == 255) return false;
    return rule == 0 ? q == k : q != k;
}

extern "C" __global__ void masked_softmax_f32(int rule, float scale, unsigned int heads,
                                              unsigned int nq, unsigned int nk,
                                              const unsigned char *q_groups,
                                              const unsigned char *k_groups, const float *s,
                                              float *p, float *lse) {
    __shared__ float scratch[32];
    unsigned int r = blockIdx.x;
    unsigned int b = r / (heads * nq), i = r % nq;
    unsigned char qg = q_groups[b * nq + i];
    const unsigned char *kg = k_groups + (size_t)b * nk;
    size_t base = (size_t)r * nk;
    float m = NEG_INF;
    for (unsigned int j = threadIdx.x; j < nk; j += blockDim.x)
        if (allowed(rule, qg, kg[j])) m = fmaxf(m, scale * s[base + j]);
    m = block_max(m, scratch);
    if (m == NEG_INF) {
        for (unsigned int j = threadIdx.x; j < nk; j += blockDim.x) p[base + j] = 0.0f;
        if (threadIdx.x == 0) lse[r] = NEG_INF;
        return;
    }
    float sum = 0.0f;
    for (unsigned int j = threadIdx.x; j < nk; j += blockDim.x)
        if (allowed(rule, qg, kg[j])) sum += expf(scale * s[base + j] - m);
    sum = block_sum(sum, scratch);
    float inv = 1.0f / sum;
    for (unsigned int j = threadIdx.x; j < nk; j += blockDim.x) {
        float v = s[base + j];
        p[base + j] = allowed(rule, qg, kg[j]) ? expf(scale * v - m) * inv : 0.0f;
    }
    if (threadIdx.x == 0) lse[r] = logf(sum) + m;
}
