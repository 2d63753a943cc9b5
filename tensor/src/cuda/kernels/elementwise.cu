// elementwise.cu: unary functions and their fused backward, x·mul + add, broadcasting binary
// ops, comparisons and `where`.
//
// Mapping: one thread per output element in a grid-stride loop (`FOR_EACH_INDEX`), blocks of
// 256 threads. Outputs are contiguous; inputs of the binary, comparison and `where` kernels are
// read through a `Strided` layout already broadcast to the output shape (stride 0 on broadcast
// dims). Float kernels compute in f32 whatever the storage type (f32 or bf16).
//
// Op codes follow the order of `UnaryOp`, `BinaryOp` and `CmpOp` in `tensor/src/op.rs`.

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_C 0.044715f

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// y = f(x). Codes: 0 neg, 1 exp, 2 log, 3 sqrt, 4 sqr, 5 recip, 6 tanh, 7 sigmoid, 8 silu,
// 9 gelu_tanh.
__device__ __forceinline__ float unary_forward(int op, float x) {
    switch (op) {
    case 0: return -x;
    case 1: return expf(x);
    case 2: return logf(x);
    case 3: return sqrtf(x);
    case 4: return x * x;
    case 5: return 1.0f / x;
    case 6: return tanhf(x);
    case 7: return sigmoid(x);
    case 8: return x * sigmoid(x);
    default: {
        float inner = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    }
}

// dy/dx given x and y = f(x), as `UnaryOp::derivative`.
__device__ __forceinline__ float unary_derivative(int op, float x, float y) {
    switch (op) {
    case 0: return -1.0f;
    case 1: return y;
    case 2: return 1.0f / x;
    case 3: return 0.5f / y;
    case 4: return 2.0f * x;
    case 5: return -y * y;
    case 6: return 1.0f - y * y;
    case 7: return y * (1.0f - y);
    case 8: {
        float s = sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    default: {
        float t = tanhf(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
        return 0.5f * (1.0f + t) +
               0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x * x);
    }
    }
}

// 0 add, 1 sub, 2 mul, 3 div, 4 maximum, 5 minimum.
__device__ __forceinline__ float binary_apply(int op, float a, float b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return fmaxf(a, b);
    default: return fminf(a, b);
    }
}

// 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge (IEEE semantics: NaN compares unequal to everything).
template <typename T> __device__ __forceinline__ bool cmp_apply(int op, T a, T b) {
    switch (op) {
    case 0: return a == b;
    case 1: return a != b;
    case 2: return a < b;
    case 3: return a <= b;
    case 4: return a > b;
    default: return a >= b;
    }
}

// x, out: [n] contiguous.
template <typename T>
__device__ void unary(int op, unsigned int n, const T *x, T *out) {
    FOR_EACH_INDEX(i, n) out[i] = from_f32<T>(unary_forward(op, to_f32(x[i])));
}

// dx = dy · f'(x); x, y, dy, dx: [n] contiguous.
template <typename T>
__device__ void unary_backward(int op, unsigned int n, const T *x, const T *y, const T *dy,
                               T *dx) {
    FOR_EACH_INDEX(i, n) {
        float d = unary_derivative(op, to_f32(x[i]), to_f32(y[i]));
        dx[i] = from_f32<T>(to_f32(dy[i]) * d);
    }
}

// out = x·mul + add; x, out: [n] contiguous.
template <typename T>
__device__ void affine(unsigned int n, const T *x, float mul, float add, T *out) {
    FOR_EACH_INDEX(i, n) out[i] = from_f32<T>(to_f32(x[i]) * mul + add);
}

// out[i] = a[i] op b[i], a and b read through their broadcast layouts.
template <typename T>
__device__ void binary(int op, unsigned int n, const T *a, Strided sa, const T *b, Strided sb,
                       T *out) {
    FOR_EACH_INDEX(i, n) {
        float x = to_f32(a[strided_offset(sa, i)]);
        float y = to_f32(b[strided_offset(sb, i)]);
        out[i] = from_f32<T>(binary_apply(op, x, y));
    }
}

// out[i] = (a[i] op b[i]) as u8 (1 = true).
template <typename T, typename C>
__device__ void compare(int op, unsigned int n, const T *a, Strided sa, const T *b, Strided sb,
                        unsigned char *out) {
    FOR_EACH_INDEX(i, n) {
        C x = (C)a[strided_offset(sa, i)];
        C y = (C)b[strided_offset(sb, i)];
        out[i] = cmp_apply<C>(op, x, y) ? 1 : 0;
    }
}

// out[i] = cond[i] != 0 ? on_true[i] : on_false[i], all three broadcast to out's shape.
template <typename T>
__device__ void where_cond(unsigned int n, const unsigned char *c, Strided sc, const T *a,
                           Strided sa, const T *b, Strided sb, T *out) {
    FOR_EACH_INDEX(i, n) {
        out[i] = c[strided_offset(sc, i)] != 0 ? a[strided_offset(sa, i)] : b[strided_offset(sb, i)];
    }
}

// One extern "C" entry point per (kernel, storage type): `<kernel>_<dtype>`.
#define FLOAT_KERNELS(T, NAME)                                                                \
    extern "C" __global__ void unary_##NAME(int op, unsigned int n, const T *x, T *out) {     \
        unary<T>(op, n, x, out);                                                              \
    }                                                                                         \
    extern "C" __global__ void unary_backward_##NAME(int op, unsigned int n, const T *x,      \
                                                     const T *y, const T *dy, T *dx) {        \
        unary_backward<T>(op, n, x, y, dy, dx);                                               \
    }                                                                                         \
    extern "C" __global__ void affine_##NAME(unsigned int n, const T *x, float mul,           \
                                             float add, T *out) {                             \
        affine<T>(n, x, mul, add, out);                                                       \
    }                                                                                         \
    extern "C" __global__ void binary_##NAME(int op, unsigned int n, const T *a, Strided sa,  \
                                             const T *b, Strided sb, T *out) {                \
        binary<T>(op, n, a, sa, b, sb, out);                                                  \
    }                                                                                         \
    extern "C" __global__ void where_##NAME(unsigned int n, const unsigned char *c,           \
                                            Strided sc, const T *a, Strided sa, const T *b,   \
                                            Strided sb, T *out) {                             \
        where_cond<T>(n, c, sc, a, sa, b, sb, out);                                           \
    }

FLOAT_KERNELS(float, f32)
FLOAT_KERNELS(__nv_bfloat16, bf16)

// Comparisons: f32 and bf16 compare in f32 (exact for bf16), f64 and integers as themselves.
#define CMP_KERNEL(T, C, NAME)                                                                \
    extern "C" __global__ void cmp_##NAME(int op, unsigned int n, const T *a, Strided sa,     \
                                          const T *b, Strided sb, unsigned char *out) {       \
        compare<T, C>(op, n, a, sa, b, sb, out);                                              \
    }

CMP_KERNEL(float, float, f32)
CMP_KERNEL(double, double, f64)
CMP_KERNEL(__nv_bfloat16, float, bf16)
CMP_KERNEL(unsigned int, unsigned int, u32)
CMP_KERNEL(unsigned char, unsigned char, u8)
