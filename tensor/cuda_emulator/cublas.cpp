// cublas.cpp: the cuBLAS calls our matmul makes (libcublas.so), emulated on the host with the
// library's column-major semantics: C = alpha·op(A)·op(B) + beta·C per batch entry, where
// op(X) is X or Xᵀ and element (i, j) of a matrix with leading dimension ld lies at i + j·ld.
// The checks on sizes and leading dimensions are cuBLAS's own, so a call the library would
// refuse is refused here too. Products accumulate in f32; with the TF32 math mode, f32 inputs
// are first rounded to TF32's 10 mantissa bits, as the tensor cores read them.

#include "device.h"

#include <cstdlib>

extern "C" {

typedef int cublasStatus_t;
struct Handle {
    int math_mode;
};
typedef Handle *cublasHandle_t;

}  // extern "C"

namespace {

constexpr cublasStatus_t SUCCESS = 0;
constexpr cublasStatus_t INVALID_VALUE = 7;
constexpr cublasStatus_t NOT_SUPPORTED = 15;
constexpr int OP_N = 0, OP_T = 1;
constexpr int R_32F = 0, R_16BF = 14;  // cudaDataType
constexpr int COMPUTE_32F = 68;
constexpr int TF32_TENSOR_OP_MATH = 3;

// Reads element i of an array of `type`.
float load(const void *p, int type, std::size_t i, bool tf32) {
    if (type == R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    float v = ((const float *)p)[i];
    return tf32 ? emu::round_to_format(v, 10, -126, 3.4028234663852886e38) : v;
}
void store(void *p, int type, std::size_t i, float v) {
    if (type == R_16BF)
        ((__nv_bfloat16 *)p)[i] = __float2bfloat16(v);
    else
        ((float *)p)[i] = v;
}

struct Gemm {
    int transa, transb, m, n, k;
    float alpha, beta;
    const void *a;
    int a_type, lda;
    long long stride_a;
    const void *b;
    int b_type, ldb;
    long long stride_b;
    void *c;
    int c_type, ldc;
    long long stride_c;
    int batch;
};

cublasStatus_t run(const Handle *h, const Gemm &g) {
    bool ops_ok = (g.transa == OP_N || g.transa == OP_T) && (g.transb == OP_N || g.transb == OP_T);
    if (!h || !ops_ok || g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0) return INVALID_VALUE;
    int a_rows = g.transa == OP_N ? g.m : g.k, b_rows = g.transb == OP_N ? g.k : g.n;
    if (g.lda < (a_rows > 1 ? a_rows : 1) || g.ldb < (b_rows > 1 ? b_rows : 1) ||
        g.ldc < (g.m > 1 ? g.m : 1))
        return INVALID_VALUE;
    bool tf32 = h->math_mode == TF32_TENSOR_OP_MATH;
    for (int e = 0; e < g.batch; ++e) {
        std::size_t a0 = (std::size_t)(e * g.stride_a), b0 = (std::size_t)(e * g.stride_b);
        std::size_t c0 = (std::size_t)(e * g.stride_c);
        for (int j = 0; j < g.n; ++j)
            for (int i = 0; i < g.m; ++i) {
                float acc = 0.0f;
                for (int p = 0; p < g.k; ++p) {
                    std::size_t ai = g.transa == OP_N ? i + (std::size_t)p * g.lda
                                                      : p + (std::size_t)i * g.lda;
                    std::size_t bi = g.transb == OP_N ? p + (std::size_t)j * g.ldb
                                                      : j + (std::size_t)p * g.ldb;
                    acc += load(g.a, g.a_type, a0 + ai, tf32) * load(g.b, g.b_type, b0 + bi, tf32);
                }
                std::size_t ci = c0 + i + (std::size_t)j * g.ldc;
                // beta = 0: C is not read (it may hold anything), as in cuBLAS.
                float prior = g.beta == 0.0f ? 0.0f : g.beta * load(g.c, g.c_type, ci, false);
                store(g.c, g.c_type, ci, g.alpha * acc + prior);
            }
    }
    return SUCCESS;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = new Handle{0};
    return SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    delete h;
    return SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t, void *) { return SUCCESS; }
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t, void *, std::size_t) { return SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, int mode) {
    h->math_mode = mode;
    return SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, int *mode) {
    *mode = h->math_mode;
    return SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, int transa, int transb, int m, int n,
                                         int k, const float *alpha, const float *a, int lda,
                                         long long stride_a, const float *b, int ldb,
                                         long long stride_b, const float *beta, float *c,
                                         int ldc, long long stride_c, int batch) {
    return run(h, {transa, transb, m, n, k, *alpha, *beta, a, R_32F, lda, stride_a, b, R_32F,
                   ldb, stride_b, c, R_32F, ldc, stride_c, batch});
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, int transa, int transb, int m, int n,
                                          int k, const void *alpha, const void *a, int a_type,
                                          int lda, long long stride_a, const void *b,
                                          int b_type, int ldb, long long stride_b,
                                          const void *beta, void *c, int c_type, int ldc,
                                          long long stride_c, int batch, int compute_type,
                                          int /*algo*/) {
    auto known = [](int t) { return t == R_32F || t == R_16BF; };
    if (compute_type != COMPUTE_32F || !known(a_type) || !known(b_type) || !known(c_type))
        return NOT_SUPPORTED;
    // With COMPUTE_32F, alpha and beta are floats.
    return run(h, {transa, transb, m, n, k, *(const float *)alpha, *(const float *)beta, a,
                   a_type, lda, stride_a, b, b_type, ldb, stride_b, c, c_type, ldc, stride_c,
                   batch});
}

}  // extern "C"
