// The per-output arithmetic of the dot-product GEMV (y[n] = alpha · dot(x, W[n, :]) + beta · y[n]), shared
// by the one-row kernel (gemm_gemv.cc, dot_rows) and the multi-row kernel (gemv_rows.cc), so that both
// give the same bits for every output (batch invariance: a row's result does not depend on how many rows
// share the call). Outputs in groups of 4 use, per output:
//   a, b: 8 lanes each; for k in steps of 16: a += W[k, k+8)·x[k, k+8), b += W[k+8, k+16)·x[k+8, k+16);
//   then, if 8 more remain, a += W[k, k+8)·x[k, k+8);  s = hsum(a + b);  s = fma(W[k], x[k], s) for the
//   last K mod 8 (in order);  y = finish(s).
// The last N mod 4 outputs take dot_one: one accumulator over k in steps of 8, hsum, the same scalar tail.
// Every multiply-add is an explicit FMA, so the compiler's contraction choices cannot make two copies of
// this arithmetic differ.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "weights_simd.h"

namespace refrag {

__attribute__((target("avx2,fma"))) inline float gemv_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// alpha · s + beta · old, one rounding after the product when beta != 0 (beta == 0 never reads old).
__attribute__((target("avx2,fma"))) inline float gemv_finish(float s, float alpha, float beta, float old) {
  return beta == 0.0f ? alpha * s : std::fma(alpha, s, beta * old);
}

// s + Σ_{k in [k0, K)} W[k]·x[k], one FMA per term in order (the scalar tail).
template <typename T>
__attribute__((target("avx2,fma"))) inline float gemv_tail(float s, int64_t k0, int64_t K, const T* w,
                                                           const float* x) {
  for (int64_t k = k0; k < K; k++) s = std::fma(to_f32(w[k]), x[k], s);
  return s;
}

// dot(x, w) for a lone output (the last N mod 4): one 8-lane accumulator, hsum, scalar tail.
template <typename T>
__attribute__((target("avx2,fma"))) inline float gemv_dot_one(int64_t K, const float* x, const T* w) {
  __m256 a = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) a = _mm256_fmadd_ps(load8(w + k), _mm256_loadu_ps(x + k), a);
  return gemv_tail(gemv_hsum(a), k, K, w, x);
}

}  // namespace refrag
