// Multi-row GEMV: Y[r, n] = alpha · dot(X[r, :], W[n, :]) + beta · Y[r, n] for R rows of activations at
// once (a batched decode step: every active request's row against the same weight), with exactly the
// one-row GEMV's arithmetic per output (gemv_dot.h), so a row's bits do not depend on R. What changes is
// the traffic: each weight tile is loaded once into registers and applied to several rows of X before the
// next tile, so W streams from memory once per call and from L1 for the other rows, and the FMAs no
// longer wait on weight loads.
// Shapes: X R×K, W N×K (f32 or bf16 bits), Y R×N, all row-major and contiguous.
//
// AVX-512 (isa() == avx512): one zmm per (output, row) holds both 8-lane chains of gemv_dot.h, a in
// lanes 0-7 and b in lanes 8-15: a 16-wide FMA is exactly the two 8-wide ones, the "8 more" step is a
// masked FMA on lanes 0-7, and a + b is low half + high half. Tile: 4 outputs × up to 4 rows (16 zmm).
// AVX2: 16 ymm registers cannot hold a and b for 4 outputs × 2 rows, so each chain is its own pass over
// the tile (a first, then b, reading the tile's other half-lines from L1): 4 outputs × 2 rows (8 ymm).
// Both end a tile inside the kernel: one transposed reduction of all its accumulators (hsum16 / hsum8,
// the same pairs in the same operand order as gemv_hsum), then the scalar tail and finish per output.
#include <immintrin.h>

#include <algorithm>

#include "common.h"
#include "gemm.h"
#include "gemv_dot.h"
#include "pool.h"

// GCC 12's avx512fintrin.h builds results from self-initialised undefined vectors, which
// -W(maybe-)uninitialized reports in every caller (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define REFRAG_AVX2 __attribute__((target("avx2,fma")))
#define REFRAG_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

namespace refrag {
namespace {

// Prefetch distance along each weight row, in elements (512 bytes ahead, as the one-row GEMV).
template <typename T>
constexpr int64_t kAheadRows = 512 / sizeof(T);

// Offset to prefetch for position k of a row: ahead in the same row, or (near its end) the start of the
// next group of 4 rows.
inline int64_t ahead(int64_t k, int64_t K, int64_t ldw, int64_t ahead_elems) {
  const int64_t o = k + ahead_elems;
  return o < K ? o : o - K + 4 * ldw;
}

// Where a tile's results go: Y rows of length ldy, y[r][o] = finish(tail(s[r][o])).
struct Out {
  float* y;  // the tile's first output of its first row
  int64_t ldy;
  float alpha, beta;
};

// The scalar tail and finish of a tile's NX × 4 outputs. Compiled for AVX2 and inlined into each tile
// kernel: called from the untargeted driver, gemv_tail and gemv_finish would be 32 out-of-line calls
// per tile (through the PLT), which cost more than a K = 256 tile's FMAs.
template <typename T>
REFRAG_AVX2 inline void finish_tile(int nx, const float (*s)[4], int64_t K, const T* const* w,
                                    const float* const* x, const Out& out) {
  const int64_t kt = K & ~int64_t(7);  // where the scalar tail starts
  for (int r = 0; r < nx; r++) {
    float* y = out.y + r * out.ldy;
    for (int o = 0; o < 4; o++)
      y[o] = gemv_finish(gemv_tail(s[r][o], kt, K, w[o], x[r]), out.alpha, out.beta, y[o]);
  }
}

// The same finish for one row's 4 outputs when K mod 8 == 0 (no scalar tail): gemv_finish lane by lane
// (a vector multiply or FMA rounds each lane as the scalar one does), straight from the reduction's
// register instead of through memory.
REFRAG_AVX2 inline void finish4(__m128 s, float* y, const Out& out) {
  const __m128 a = _mm_set1_ps(out.alpha);
  if (out.beta == 0.0f)
    _mm_storeu_ps(y, _mm_mul_ps(a, s));
  else
    _mm_storeu_ps(y, _mm_fmadd_ps(a, s, _mm_mul_ps(_mm_set1_ps(out.beta), _mm_loadu_ps(y))));
}

// The last N mod 4 outputs [n0, n1) of every row: dot_one, as the one-row GEMV.
template <typename T>
REFRAG_AVX2 void lone_outputs(int64_t n0, int64_t n1, int64_t R, int64_t K, float alpha, const float* X,
                              const T* W, float beta, float* Y, int64_t N) {
  for (int64_t n = n0; n < n1; n++)
    for (int64_t r = 0; r < R; r++) {
      float* y = Y + r * N + n;
      *y = gemv_finish(gemv_dot_one(K, X + r * K, W + n * K), alpha, beta, *y);
    }
}

// ---- AVX2 -------------------------------------------------------------------------------------------

// One chain (half 0: a, half 1: b) of 4 weight rows w[0..4) against NX rows x[0..NX): acc[o][r] sums
// W_o·x_r over that chain's 8-lane k-steps.
template <typename T, int NX>
REFRAG_AVX2 void chain_avx2(int64_t K, int64_t ldw, const T* const* w, const float* const* x, int half,
                            bool prefetch, __m256 (*acc)[4]) {
  __m256 c[4][NX];
  for (int o = 0; o < 4; o++)
    for (int r = 0; r < NX; r++) c[o][r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    if (prefetch) {
      const int64_t d = ahead(k, K, ldw, kAheadRows<T>);
      for (int o = 0; o < 4; o++) _mm_prefetch(reinterpret_cast<const char*>(w[o] + d), _MM_HINT_T0);
    }
    const int64_t kk = k + 8 * half;
    __m256 wv[4];
    for (int o = 0; o < 4; o++) wv[o] = load8(w[o] + kk);
    for (int r = 0; r < NX; r++) {
      const __m256 xv = _mm256_loadu_ps(x[r] + kk);
      for (int o = 0; o < 4; o++) c[o][r] = _mm256_fmadd_ps(wv[o], xv, c[o][r]);
    }
  }
  if (half == 0 && k + 8 <= K)
    for (int r = 0; r < NX; r++) {
      const __m256 xv = _mm256_loadu_ps(x[r] + k);
      for (int o = 0; o < 4; o++) c[o][r] = _mm256_fmadd_ps(load8(w[o] + k), xv, c[o][r]);
    }
  for (int o = 0; o < 4; o++)
    for (int r = 0; r < NX; r++) acc[r][o] = c[o][r];
}

// Per 128-bit half: [p0 + p2, p1 + p3, q0 + q2, q1 + q3].
REFRAG_AVX2 inline __m256 add_pairs(__m256 p, __m256 q) {
  const __m256d pd = _mm256_castps_pd(p), qd = _mm256_castps_pd(q);
  return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(pd, qd)),
                       _mm256_castpd_ps(_mm256_unpackhi_pd(pd, qd)));
}

// gemv_hsum for 8 sums v[o][r] (o < 4, r < 2) in one transposed reduction, the same pairs in the same
// operand order as gemv_hsum (lanes i + i+4; i + i+2; 0 + 1). Returns out[4·r + o].
REFRAG_AVX2 inline __m256 hsum8(const __m256 (*v)[2]) {
  __m256 u[4];  // [v[o][0] lanes i + i+4 | v[o][1] lanes i + i+4]
  for (int o = 0; o < 4; o++)
    u[o] = _mm256_add_ps(_mm256_permute2f128_ps(v[o][0], v[o][1], 0x20),
                         _mm256_permute2f128_ps(v[o][0], v[o][1], 0x31));
  const __m256 z01 = add_pairs(u[0], u[1]), z23 = add_pairs(u[2], u[3]);
  return _mm256_add_ps(_mm256_shuffle_ps(z01, z23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm256_shuffle_ps(z01, z23, _MM_SHUFFLE(3, 1, 3, 1)));
}

// out[r][o] for 4 weight rows × NX rows of x: hsum(a + b), scalar tail, finish.
template <typename T, int NX>
REFRAG_AVX2 void tile_avx2(int64_t K, int64_t ldw, const T* const* w, const float* const* x, bool prefetch,
                           const Out& out) {
  __m256 a[NX][4], b[NX][4];
  chain_avx2<T, NX>(K, ldw, w, x, 0, prefetch, a);
  chain_avx2<T, NX>(K, ldw, w, x, 1, false, b);
  __m256 v[4][2];  // a + b, zeros for the rows the tile does not have
  for (int o = 0; o < 4; o++) {
    v[o][1] = _mm256_setzero_ps();
    for (int r = 0; r < NX; r++) v[o][r] = _mm256_add_ps(a[r][o], b[r][o]);
  }
  const __m256 sum = hsum8(v);
  if ((K & 7) == 0) {
    finish4(_mm256_castps256_ps128(sum), out.y, out);
    if (NX == 2) finish4(_mm256_extractf128_ps(sum, 1), out.y + out.ldy, out);
    return;
  }
  float s[4][4];
  _mm256_storeu_ps(&s[0][0], sum);
  finish_tile(NX, s, K, w, x, out);
}

// ---- AVX-512 ----------------------------------------------------------------------------------------

REFRAG_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
REFRAG_AVX512 inline __m512 load16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// 8 values in lanes 0-7, zeros above (the lanes above are masked off by the caller anyway).
REFRAG_AVX512 inline __m512 load8_low(const float* p) { return _mm512_maskz_loadu_ps(0x00FF, p); }
REFRAG_AVX512 inline __m512 load8_low(const uint16_t* p) {
  const __m256i h = _mm256_maskz_loadu_epi16(0x00FF, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Per 128-bit lane: [p0 + p2, p1 + p3, q0 + q2, q1 + q3].
REFRAG_AVX512 inline __m512 add_pairs(__m512 p, __m512 q) {
  const __m512d pd = _mm512_castps_pd(p), qd = _mm512_castps_pd(q);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(pd, qd)),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(pd, qd)));
}

// gemv_hsum(a + b) for 16 accumulators (a in lanes 0-7, b in 8-15) in one transposed reduction: each
// level adds the same pairs, in the same operand order, as gemv_hsum does for one accumulator (a + b;
// lanes i + i+4; i + i+2; 0 + 1), several accumulators per instruction. Returns out[4·r + o] for c[o][r].
REFRAG_AVX512 inline __m512 hsum16(const __m512 (*c)[4]) {
  __m512 w[4];
  for (int o = 0; o < 4; o++) {
    // [c.a + c.b of rows 0, 1 | of rows 2, 3]: 128-bit lanes (0, 1) + (2, 3) of each accumulator.
    const __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(c[o][0], c[o][1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(c[o][0], c[o][1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(c[o][2], c[o][3], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(c[o][2], c[o][3], _MM_SHUFFLE(3, 2, 3, 2)));
    // Lanes i + i+4 of each 8-lane sum: 128-bit lane r holds row r's 4 partial sums.
    w[o] = _mm512_add_ps(_mm512_shuffle_f32x4(u, v, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(u, v, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // Lanes i + i+2 (within each 128-bit lane): [o0 s0, o0 s1, o1 s0, o1 s1] and the same for outputs 2, 3.
  const __m512 z01 = add_pairs(w[0], w[1]), z23 = add_pairs(w[2], w[3]);
  // Lanes 0 + 1: [o0, o1, o2, o3] of row r in 128-bit lane r.
  return _mm512_add_ps(_mm512_shuffle_ps(z01, z23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(z01, z23, _MM_SHUFFLE(3, 1, 3, 1)));
}

template <typename T, int NX>
REFRAG_AVX512 void tile_avx512(int64_t K, int64_t ldw, const T* const* w, const float* const* x,
                               bool prefetch, const Out& out) {
  __m512 c[4][NX];
  for (int o = 0; o < 4; o++)
    for (int r = 0; r < NX; r++) c[o][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    if (prefetch) {
      const int64_t d = ahead(k, K, ldw, kAheadRows<T>);
      for (int o = 0; o < 4; o++) _mm_prefetch(reinterpret_cast<const char*>(w[o] + d), _MM_HINT_T0);
    }
    __m512 wv[4];
    for (int o = 0; o < 4; o++) wv[o] = load16(w[o] + k);
    for (int r = 0; r < NX; r++) {
      const __m512 xv = _mm512_loadu_ps(x[r] + k);
      for (int o = 0; o < 4; o++) c[o][r] = _mm512_fmadd_ps(wv[o], xv, c[o][r]);
    }
  }
  if (k + 8 <= K)
    for (int r = 0; r < NX; r++) {
      const __m512 xv = load8_low(x[r] + k);
      for (int o = 0; o < 4; o++) c[o][r] = _mm512_mask3_fmadd_ps(load8_low(w[o] + k), xv, c[o][r], 0x00FF);
    }
  // hsum(a + b) of all 16 (output, row) accumulators at once (rows the tile does not have sum zeros).
  __m512 t[4][4];
  for (int o = 0; o < 4; o++)
    for (int r = 0; r < 4; r++) t[o][r] = _mm512_setzero_ps();
  for (int o = 0; o < 4; o++)
    for (int r = 0; r < NX; r++) t[o][r] = c[o][r];
  const __m512 sum = hsum16(t);
  if ((K & 7) == 0) {
    finish4(_mm512_castps512_ps128(sum), out.y, out);
    if (NX > 1) finish4(_mm512_extractf32x4_ps(sum, 1), out.y + out.ldy, out);
    if (NX > 2) finish4(_mm512_extractf32x4_ps(sum, 2), out.y + 2 * out.ldy, out);
    if (NX > 3) finish4(_mm512_extractf32x4_ps(sum, 3), out.y + 3 * out.ldy, out);
    return;
  }
  float s[4][4];
  _mm512_storeu_ps(&s[0][0], sum);
  finish_tile(NX, s, K, w, x, out);
}

// ---- driver -----------------------------------------------------------------------------------------

// Outputs [n0, n1) for every row: groups of 4 outputs (n0 and, unless n1 == N, n1 are multiples of 4),
// each group's tile applied to the rows in runs of `nx` (the tile's height), then the lone outputs.
template <typename T>
void rows_range(bool wide, int64_t n0, int64_t n1, int64_t R, int64_t K, float alpha, const float* X,
                const T* W, float beta, float* Y, int64_t N) {
  const int nx_max = wide ? 4 : 2;
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const T* w[4] = {W + n * K, W + (n + 1) * K, W + (n + 2) * K, W + (n + 3) * K};
    for (int64_t r0 = 0; r0 < R; r0 += nx_max) {
      const int nx = static_cast<int>(std::min<int64_t>(nx_max, R - r0));
      const float* x[4];
      for (int r = 0; r < nx; r++) x[r] = X + (r0 + r) * K;
      const Out out{Y + r0 * N + n, N, alpha, beta};
      const bool pf = r0 == 0;  // the first run streams the tile in; the others read it from L1
      if (wide) {
        switch (nx) {
          case 1: tile_avx512<T, 1>(K, K, w, x, pf, out); break;
          case 2: tile_avx512<T, 2>(K, K, w, x, pf, out); break;
          case 3: tile_avx512<T, 3>(K, K, w, x, pf, out); break;
          default: tile_avx512<T, 4>(K, K, w, x, pf, out); break;
        }
      } else if (nx == 1) {
        tile_avx2<T, 1>(K, K, w, x, pf, out);
      } else {
        tile_avx2<T, 2>(K, K, w, x, pf, out);
      }
    }
  }
  lone_outputs(n, n1, R, K, alpha, X, W, beta, Y, N);
}

template <typename T>
void gemv_rows_any(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const T* W, float beta,
                   float* Y, int threads) {
  if (R <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < R * N; i++) Y[i] = beta == 0.0f ? 0.0f : beta * Y[i];
    return;
  }
  const bool wide = isa() == Isa::avx512;
  if (threads <= 0) threads = num_threads();
  // Threads split the outputs in whole groups of 4 (so the lone outputs stay the last N mod 4), each
  // thread reading its share of W once. Below ~64K multiply-adds a pool wake-up costs more than the work.
  const int64_t units = (N + 3) / 4;
  const double work = static_cast<double>(R) * static_cast<double>(N) * static_cast<double>(K);
  const int64_t parts = work < 65536.0 ? 1 : std::min<int64_t>(threads, units);
  auto run = [&](int64_t t) {
    const int64_t b = units * t / parts * 4, e = std::min(N, units * (t + 1) / parts * 4);
    if (b < e) rows_range(wide, b, e, R, K, alpha, X, W, beta, Y, N);
  };
  if (parts == 1)
    run(0);
  else
    parallel_tasks(parts, run);
}

}  // namespace

void sgemv_rows(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const float* W, float beta,
                float* Y, int threads) {
  gemv_rows_any(R, N, K, alpha, X, W, beta, Y, threads);
}

void sgemv_rows_bf16(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const uint16_t* W,
                     float beta, float* Y, int threads) {
  gemv_rows_any(R, N, K, alpha, X, W, beta, Y, threads);
}

}  // namespace refrag
