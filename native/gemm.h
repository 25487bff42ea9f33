// C++ entry points of the GEMM family, for other kernels that need a matrix product (row-major, packed:
// lda/ldb/ldc are the row lengths of the stored matrices). C = alpha · op(A) · op(B) + beta · C;
// beta == 0 overwrites C without reading it. op(A) is M×K, op(B) is K×N, C is M×N.
#pragma once
#include <cstdint>

namespace refrag {

// threads <= 0 means "the pool's thread count"; inside a pool task the call runs serially anyway.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads = 0);

// B holds bf16 bits (the weight side). M == 1 streams bf16 directly; M > 1 converts while packing.
void sgemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc,
                int threads = 0);

// y[0..N) = alpha · x[0..K) · op(W) + beta · y. transW false: W is K×N (axpy over rows);
// transW true: W is N×K (a dot product per row). ldw is W's row length.
void sgemv(bool transW, int64_t N, int64_t K, float alpha, const float* x, const float* W, int64_t ldw,
           float beta, float* y, int threads = 0);
void sgemv_bf16(bool transW, int64_t N, int64_t K, float alpha, const float* x, const uint16_t* W,
                int64_t ldw, float beta, float* y, int threads = 0);

// Y[R×N] = alpha · X[R×K] · Wᵀ + beta · Y with W stored N×K (contiguous rows): every row with exactly the
// arithmetic of sgemv(transW = true) on that row alone (batch invariance), each weight tile loaded once
// for several rows (gemv_rows.cc). Addon only (reads isa()).
void sgemv_rows(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const float* W, float beta,
                float* Y, int threads = 0);
void sgemv_rows_bf16(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const uint16_t* W,
                     float beta, float* Y, int threads = 0);

// Y[R×N] = alpha · X[R×K] · Wt + beta · Y with the weight stored transposed, Wt K×N (gemv_kmajor.cc):
// every output one sequential FMA chain over k, so its bits do not depend on R, the row, the thread count
// or the instruction set. Addon only (reads isa()).
void sgemv_kmajor(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const float* Wt, float beta,
                  float* Y, int threads = 0);
void sgemv_kmajor_bf16(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const uint16_t* Wt,
                       float beta, float* Y, int threads = 0);

// sgemv_kmajor with Wt in the panel layout, Wp: column n in the K × w panel from p0 = n - n mod kPanel
// (w = min(kPanel, N - p0)), row-major at Wp[p0 · K]. The same chains, so the same bits as sgemv_kmajor; a
// panel is contiguous, so R > 1 reads it from L2 without the set conflicts of a large N's row stride.
constexpr int64_t kPanel = 96;
void sgemv_panels(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const float* Wp, float beta,
                  float* Y, int threads = 0);
void sgemv_panels_bf16(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const uint16_t* Wp,
                       float beta, float* Y, int threads = 0);

// Round-to-nearest-even f32 -> bf16 (NaN stays NaN, sign kept), and the exact widening.
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);

}  // namespace refrag
