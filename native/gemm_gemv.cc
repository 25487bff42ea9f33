// GEMV (one row of activations times a weight matrix, the decode case) and bf16 conversions.
// On weights larger than the caches a GEMV is memory-bound, so the loops stream W exactly once, in
// address order, split over threads by output column; bf16 weights are widened in registers
// (vpmovzxwd + shift 16) so they move half the bytes.
// Shapes: x [K], y [N]; W is N×K (transW: one dot product per row) or K×N (axpy over rows).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm.h"
#include "gemv_dot.h"
#include "pool.h"
#include "weights_simd.h"

namespace refrag {
namespace {

inline float finish(float acc, float alpha, float beta, float old) {
  return beta == 0.0f ? alpha * acc : alpha * acc + beta * old;
}

// Prefetch distance in elements along each streamed row (bytes ahead of the loads; overridable only for
// tuning builds).
#ifndef REFRAG_GEMV_AHEAD
#define REFRAG_GEMV_AHEAD 512
#endif
template <typename T>
constexpr int64_t kAhead = REFRAG_GEMV_AHEAD / sizeof(T);

// y[n] = alpha · dot(x, W[n, :]) + beta · y[n] for n in [n0, n1); 4 rows at a time share each x load.
// The per-output arithmetic is gemv_dot.h's (gemv_rows.cc repeats it for several rows of x at once).
template <typename T>
__attribute__((target("avx2,fma"))) void dot_rows(int64_t n0, int64_t n1, int64_t K, float alpha,
                                                  const float* x, const T* W, int64_t ldw, float beta,
                                                  float* y) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const T* r0 = W + n * ldw;
    const T* r1 = r0 + ldw;
    const T* r2 = r1 + ldw;
    const T* r3 = r2 + ldw;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(),
           b3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      // Near the end of the rows, prefetch the start of the next 4 rows, so each new group of rows
      // (a new page for bf16 rows of 2048) does not begin with demand misses.
      const int64_t o = k + kAhead<T>;
      const int64_t d = o < K ? o : o - K + 4 * ldw;
      _mm_prefetch(reinterpret_cast<const char*>(r0 + d), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(r1 + d), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(r2 + d), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(r3 + d), _MM_HINT_T0);
      const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
      a0 = _mm256_fmadd_ps(load8(r0 + k), x0, a0);
      a1 = _mm256_fmadd_ps(load8(r1 + k), x0, a1);
      a2 = _mm256_fmadd_ps(load8(r2 + k), x0, a2);
      a3 = _mm256_fmadd_ps(load8(r3 + k), x0, a3);
      b0 = _mm256_fmadd_ps(load8(r0 + k + 8), x1, b0);
      b1 = _mm256_fmadd_ps(load8(r1 + k + 8), x1, b1);
      b2 = _mm256_fmadd_ps(load8(r2 + k + 8), x1, b2);
      b3 = _mm256_fmadd_ps(load8(r3 + k + 8), x1, b3);
    }
    for (; k + 8 <= K; k += 8) {
      const __m256 x0 = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(load8(r0 + k), x0, a0);
      a1 = _mm256_fmadd_ps(load8(r1 + k), x0, a1);
      a2 = _mm256_fmadd_ps(load8(r2 + k), x0, a2);
      a3 = _mm256_fmadd_ps(load8(r3 + k), x0, a3);
    }
    y[n] = gemv_finish(gemv_tail(gemv_hsum(_mm256_add_ps(a0, b0)), k, K, r0, x), alpha, beta, y[n]);
    y[n + 1] = gemv_finish(gemv_tail(gemv_hsum(_mm256_add_ps(a1, b1)), k, K, r1, x), alpha, beta, y[n + 1]);
    y[n + 2] = gemv_finish(gemv_tail(gemv_hsum(_mm256_add_ps(a2, b2)), k, K, r2, x), alpha, beta, y[n + 2]);
    y[n + 3] = gemv_finish(gemv_tail(gemv_hsum(_mm256_add_ps(a3, b3)), k, K, r3, x), alpha, beta, y[n + 3]);
  }
  for (; n < n1; n++) y[n] = gemv_finish(gemv_dot_one(K, x, W + n * ldw), alpha, beta, y[n]);
}

// y[n0..n1) = alpha · Σ_k x[k] · W[k, n0..n1) + beta · y. Column blocks of CB keep the running sums
// in L1 while 4 rows of W stream through in address order.
template <typename T>
__attribute__((target("avx2,fma"))) void axpy_rows(int64_t n0, int64_t n1, int64_t K, float alpha,
                                                   const float* x, const T* W, int64_t ldw, float beta,
                                                   float* y) {
  constexpr int64_t CB = 2048;
  alignas(32) float acc[CB];
  for (int64_t c0 = n0; c0 < n1; c0 += CB) {
    const int64_t w = std::min(CB, n1 - c0);
    std::fill(acc, acc + w, 0.0f);
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const T* r0 = W + k * ldw + c0;
      const T* r1 = r0 + ldw;
      const T* r2 = r1 + ldw;
      const T* r3 = r2 + ldw;
      const __m256 x0 = _mm256_set1_ps(x[k]), x1 = _mm256_set1_ps(x[k + 1]);
      const __m256 x2 = _mm256_set1_ps(x[k + 2]), x3 = _mm256_set1_ps(x[k + 3]);
      int64_t j = 0;
      for (; j + 8 <= w; j += 8) {
        // The next 4 rows, one line per 64 bytes: a whole group of rows in flight ahead of the loads.
        if ((j * sizeof(T)) % 64 == 0 && k + 8 <= K) {
          _mm_prefetch(reinterpret_cast<const char*>(r0 + 4 * ldw + j), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(r1 + 4 * ldw + j), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(r2 + 4 * ldw + j), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(r3 + 4 * ldw + j), _MM_HINT_T0);
        }
        __m256 t = _mm256_load_ps(acc + j);
        t = _mm256_fmadd_ps(x0, load8(r0 + j), t);
        t = _mm256_fmadd_ps(x1, load8(r1 + j), t);
        t = _mm256_fmadd_ps(x2, load8(r2 + j), t);
        t = _mm256_fmadd_ps(x3, load8(r3 + j), t);
        _mm256_store_ps(acc + j, t);
      }
      for (; j < w; j++)
        acc[j] += x[k] * to_f32(r0[j]) + x[k + 1] * to_f32(r1[j]) + x[k + 2] * to_f32(r2[j]) +
                  x[k + 3] * to_f32(r3[j]);
    }
    for (; k < K; k++) {
      const T* r = W + k * ldw + c0;
      const __m256 xv = _mm256_set1_ps(x[k]);
      int64_t j = 0;
      for (; j + 8 <= w; j += 8) _mm256_store_ps(acc + j, _mm256_fmadd_ps(xv, load8(r + j), _mm256_load_ps(acc + j)));
      for (; j < w; j++) acc[j] += x[k] * to_f32(r[j]);
    }
    for (int64_t j = 0; j < w; j++) y[c0 + j] = finish(acc[j], alpha, beta, y[c0 + j]);
  }
}

template <typename T>
void gemv_any(bool transW, int64_t N, int64_t K, float alpha, const float* x, const T* W, int64_t ldw,
              float beta, float* y, int threads) {
  if (N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    for (int64_t n = 0; n < N; n++) y[n] = beta == 0.0f ? 0.0f : beta * y[n];
    return;
  }
  if (threads <= 0) threads = num_threads();
  // Units of 4 rows (dot form) or 64 columns (axpy form, whole cache lines per thread).
  const int64_t unit = transW ? 4 : 64;
  const int64_t units = (N + unit - 1) / unit;
  // Below ~64K weights a pool wake-up costs more than the work.
  const int64_t parts = N * K < (1 << 16) ? 1 : std::min<int64_t>(threads, units);
  auto run = [&](int64_t t) {
    const int64_t b = units * t / parts * unit, e = std::min(N, units * (t + 1) / parts * unit);
    if (b >= e) return;
    if (transW)
      dot_rows(b, e, K, alpha, x, W, ldw, beta, y);
    else
      axpy_rows(b, e, K, alpha, x, W, ldw, beta, y);
  };
  if (parts == 1)
    run(0);
  else
    parallel_tasks(parts, run);
}

}  // namespace

void sgemv(bool transW, int64_t N, int64_t K, float alpha, const float* x, const float* W, int64_t ldw,
           float beta, float* y, int threads) {
  gemv_any(transW, N, K, alpha, x, W, ldw, beta, y, threads);
}

void sgemv_bf16(bool transW, int64_t N, int64_t K, float alpha, const float* x, const uint16_t* W,
                int64_t ldw, float beta, float* y, int threads) {
  gemv_any(transW, N, K, alpha, x, W, ldw, beta, y, threads);
}

namespace {
inline uint16_t round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  // NaN: keep sign and top payload, force the quiet bit so truncation cannot turn it into Inf.
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__attribute__((target("avx2,fma"))) void f32_to_bf16_avx2(const float* src, uint16_t* dst, int64_t n) {
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i quiet = _mm256_set1_epi32(0x400000);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i));
    __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(_mm256_srli_epi32(u, 16), one));
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    __m256i r = _mm256_srli_epi32(_mm256_blendv_epi8(rounded, _mm256_or_si256(u, quiet), nan), 16);
    // Pack 8 × 32-bit (values < 65536) to 8 × 16-bit: packus works per 128-bit lane, then fix the order.
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_castsi256_si128(p));
  }
  for (; i < n; i++) dst[i] = round_bf16(src[i]);
}

__attribute__((target("avx2,fma"))) void bf16_to_f32_avx2(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src + i));
  for (; i < n; i++) dst[i] = to_f32(src[i]);
}
}  // namespace

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  parallel_for(n, 1 << 18, [&](int64_t b, int64_t e) { f32_to_bf16_avx2(src + b, dst + b, e - b); });
}

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  parallel_for(n, 1 << 18, [&](int64_t b, int64_t e) { bf16_to_f32_avx2(src + b, dst + b, e - b); });
}

}  // namespace refrag
