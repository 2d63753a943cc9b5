// rope.cu: rotary position embedding (GPT-NeoX "rotate half") at gathered positions.
//
// x is [B, N, H, d] read through its strides (`Strided` of rank 4), cos and sin are contiguous
// f32 tables [B, N, d/2] built from each token's own position, out is contiguous [B, N, H, d]:
//   out[.., k]       = x1·cos − x2·sin
//   out[.., k + d/2] = x2·cos + x1·sin        (x1 = x[.., k], x2 = x[.., k + d/2], k < d/2)
// With `inverse` the rotation is by −θ (sin negated): the backward, since rotations are
// orthogonal.
//
// Mapping: one thread per (token row r = b·N + n, head h, pair k), n = B·N·H·(d/2) threads in a
// grid-stride loop; each thread reads and writes both halves of its pair.

template <typename T>
__device__ void rope(int inverse, unsigned int n, unsigned int tokens, unsigned int heads,
                     unsigned int half, const T *x, Strided sx, const float *cos_t,
                     const float *sin_t, T *out) {
    FOR_EACH_INDEX(i, n) {
        unsigned int k = i % half;
        unsigned int rh = i / half;  // r·H + h
        unsigned int h = rh % heads, r = rh / heads;
        unsigned int b = r / tokens, t = r % tokens;
        unsigned int src = sx.offset + b * sx.strides[0] + t * sx.strides[1] + h * sx.strides[2];
        float x1 = to_f32(x[src + k * sx.strides[3]]);
        float x2 = to_f32(x[src + (k + half) * sx.strides[3]]);
        float c = cos_t[r * half + k], s = sin_t[r * half + k];
        if (inverse) s = -s;
        unsigned int dst = rh * 2 * half + k;
        out[dst] = from_f32<T>(x1 * c - x2 * s);
        out[dst + half] = from_f32<T>(x2 * c + x1 * s);
    }
}

#define ROPE_KERNEL(T, NAME)                                                                  \
    extern "C" __global__ void rope_##NAME(int inverse, unsigned int n, unsigned int tokens,  \
                                           unsigned int heads, unsigned int half, const T *x, \
                                           Strided sx, const float *cos_t,                    \
                                           const float *sin_t, T *out) {                      \
        rope<T>(inverse, n, tokens, heads, half, x, sx, cos_t, sin_t, out);                   \
    }

ROPE_KERNEL(float, f32)
ROPE_KERNEL(__nv_bfloat16, bf16)
