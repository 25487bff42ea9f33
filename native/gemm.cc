// Packed, register-tiled SGEMM (BLIS loop order) for AVX2+FMA, with f32 or bf16 B (the AVX-512 variant
// is gemm_avx512.cc; gemm_parallel below picks one by isa()).
// Shapes: op(A) M×K, op(B) K×N, C M×N, all row-major. Blocks: C is cut into NC-wide column panels;
// K into KC-deep slices (the packed B slice KC×NC sits in L2/L3); M into MC-tall blocks (packed A block
// MC×KC in L2); the 6×16 micro-tile keeps 12 ymm accumulators while a KC×16 B micro-panel stays in L1.
// Transposes are absorbed by the packing routines, edges by zero padding in the packs.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm.h"
#include "gemm_impl.h"
#include "pool.h"
#include "weights_simd.h"

namespace refrag {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;
#ifndef REFRAG_GEMM_KC  // overridable only for tuning builds
#define REFRAG_GEMM_KC 256
#define REFRAG_GEMM_MC 120
#define REFRAG_GEMM_NC 2048
#endif
constexpr int64_t KC = REFRAG_GEMM_KC;  // 16 KiB B micro-panel: half of the 32 KiB L1d
constexpr int64_t MC = REFRAG_GEMM_MC;  // 120 KiB packed A block: a quarter of the 512 KiB L2
constexpr int64_t NC = REFRAG_GEMM_NC;  // 2 MiB packed B slice: L3 (shared), read once per MC block

// Six rows of A (row-major, stride lda) × 8 columns, transposed into 8 packed MR-groups: rows 0-3 by a
// 4×4 unpack/shuffle per 128-bit lane, rows 4-5 by one unpack, written as 16- and 8-byte stores.
__attribute__((target("avx2,fma"))) inline void pack_a_6x8(const float* const* rows, int64_t p, float* d) {
  const __m256 r0 = _mm256_loadu_ps(rows[0] + p), r1 = _mm256_loadu_ps(rows[1] + p);
  const __m256 r2 = _mm256_loadu_ps(rows[2] + p), r3 = _mm256_loadu_ps(rows[3] + p);
  const __m256 r4 = _mm256_loadu_ps(rows[4] + p), r5 = _mm256_loadu_ps(rows[5] + p);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  // s_j holds rows 0-3 of column j (low lane) and of column j + 4 (high lane).
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  // u0 = rows 4-5 of columns 0,1 | 4,5; u1 = of columns 2,3 | 6,7.
  const __m256 u0 = _mm256_unpacklo_ps(r4, r5), u1 = _mm256_unpackhi_ps(r4, r5);
  const __m256 s[4] = {s0, s1, s2, s3};
  for (int j = 0; j < 4; j++) {
    _mm_storeu_ps(d + j * MR, _mm256_castps256_ps128(s[j]));
    _mm_storeu_ps(d + (j + 4) * MR, _mm256_extractf128_ps(s[j], 1));
  }
  const __m128 u0l = _mm256_castps256_ps128(u0), u0h = _mm256_extractf128_ps(u0, 1);
  const __m128 u1l = _mm256_castps256_ps128(u1), u1h = _mm256_extractf128_ps(u1, 1);
  _mm_storel_pi(reinterpret_cast<__m64*>(d + 0 * MR + 4), u0l);
  _mm_storeh_pi(reinterpret_cast<__m64*>(d + 1 * MR + 4), u0l);
  _mm_storel_pi(reinterpret_cast<__m64*>(d + 2 * MR + 4), u1l);
  _mm_storeh_pi(reinterpret_cast<__m64*>(d + 3 * MR + 4), u1l);
  _mm_storel_pi(reinterpret_cast<__m64*>(d + 4 * MR + 4), u0h);
  _mm_storeh_pi(reinterpret_cast<__m64*>(d + 5 * MR + 4), u0h);
  _mm_storel_pi(reinterpret_cast<__m64*>(d + 6 * MR + 4), u1h);
  _mm_storeh_pi(reinterpret_cast<__m64*>(d + 7 * MR + 4), u1h);
}

// op(A) rows [i0, i0+mc) × cols [p0, p0+kc) into MR-row micro-panels (kc × MR each, zero-padded).
// Reads go along stored rows (the hardware prefetcher follows them), never down strided columns.
__attribute__((target("avx2,fma"))) void pack_a(bool transA, const float* A, int64_t lda, int64_t i0,
                                                int64_t mc, int64_t p0, int64_t kc, float* dst) {
  if (!transA) {
    for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
      const int m = static_cast<int>(std::min<int64_t>(MR, mc - ir));
      const float* rows[MR];
      for (int r = 0; r < MR; r++) rows[r] = A + (i0 + ir + std::min(r, m - 1)) * lda + p0;
      int64_t p = 0;
      if (m == MR) {
        // Six short row streams: prefetch the next panel's rows one panel ahead.
        const bool next = ir + 2 * MR <= mc;
        for (; p + 8 <= kc; p += 8) {
          if (next)
            for (int r = 0; r < MR; r++) _mm_prefetch(reinterpret_cast<const char*>(rows[r] + MR * lda + p), _MM_HINT_T0);
          pack_a_6x8(rows, p, dst + p * MR);
        }
      }
      for (; p < kc; p++)
        for (int r = 0; r < MR; r++) dst[p * MR + r] = r < m ? rows[r][p] : 0.0f;
    }
    return;
  }
  // op(A)(i, p) = A[p * lda + i]: stored row p0+p holds MR consecutive values of every panel.
  const int64_t full = mc / MR * MR;
  for (int64_t p = 0; p < kc; p++) {
    const float* src = A + (p0 + p) * lda + i0;
    float* d = dst + p * MR;
    for (int64_t ir = 0; ir < full; ir += MR, d += kc * MR) {
      _mm_storeu_ps(d, _mm_loadu_ps(src + ir));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(src + ir + 4))));
    }
    if (full < mc)
      for (int r = 0; r < MR; r++) d[r] = full + r < mc ? src[full + r] : 0.0f;
  }
}

// 8×8 transpose of the rows r[0..8) (in place): afterwards r[j] is column j.
__attribute__((target("avx2,fma"))) inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// op(B) rows [p0, p0+kc) × cols [j0, j0+nc) into NR-column micro-panels (kc × NR each, zero-padded),
// converting bf16 to f32 on the way. Reads go along stored rows, as in pack_a.
template <typename T>
__attribute__((target("avx2,fma"))) void pack_b(bool transB, const T* B, int64_t ldb, int64_t p0,
                                                int64_t kc, int64_t j0, int64_t nc, float* dst) {
  const int64_t full = nc / NR * NR;
  if (!transB) {
    // Stored row p0+p holds NR consecutive values of every panel.
    for (int64_t p = 0; p < kc; p++) {
      const T* src = B + (p0 + p) * ldb + j0;
      float* d = dst + p * NR;
      for (int64_t jr = 0; jr < full; jr += NR, d += kc * NR) {
        _mm256_store_ps(d, load8(src + jr));
        _mm256_store_ps(d + 8, load8(src + jr + 8));
      }
      if (full < nc)
        for (int c = 0; c < NR; c++) d[c] = full + c < nc ? to_f32(src[full + c]) : 0.0f;
    }
    return;
  }
  // op(B)(p, j) = B[j * ldb + p]: panel column c is stored row j0+jr+c; 8×8 blocks are transposed.
  for (int64_t jr = 0; jr < nc; jr += NR, dst += kc * NR) {
    const int n = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    int64_t p = 0;
    if (n == NR) {
      for (; p + 8 <= kc; p += 8)
        for (int h = 0; h < 2; h++) {
          __m256 r[8];
          for (int c = 0; c < 8; c++) r[c] = load8(B + (j0 + jr + h * 8 + c) * ldb + p0 + p);
          transpose8(r);
          for (int q = 0; q < 8; q++) _mm256_store_ps(dst + (p + q) * NR + h * 8, r[q]);
        }
    }
    for (int c = 0; c < NR; c++) {
      const T* src = B + (j0 + jr + std::min(c, n - 1)) * ldb + p0;
      for (int64_t q = p; q < kc; q++) dst[q * NR + c] = c < n ? to_f32(src[q]) : 0.0f;
    }
  }
}

// C[mr×nr] = alpha · (Ap · Bp) + beta · C, with Ap kc×MR and Bp kc×NR packed panels.
__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const float* __restrict a,
                                                     const float* __restrict b, float* c, int64_t ldc,
                                                     float alpha, float beta, int mr, int nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int r = 0; r < mr; r++) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 15), _MM_HINT_T0);
  }
#define REFRAG_GEMM_STEP(off)                                                     \
  {                                                                               \
    const __m256 b0 = _mm256_load_ps(b + (off) * NR);                             \
    const __m256 b1 = _mm256_load_ps(b + (off) * NR + 8);                         \
    __m256 av = _mm256_broadcast_ss(a + (off) * MR + 0);                          \
    c00 = _mm256_fmadd_ps(av, b0, c00);                                           \
    c01 = _mm256_fmadd_ps(av, b1, c01);                                           \
    av = _mm256_broadcast_ss(a + (off) * MR + 1);                                 \
    c10 = _mm256_fmadd_ps(av, b0, c10);                                           \
    c11 = _mm256_fmadd_ps(av, b1, c11);                                           \
    av = _mm256_broadcast_ss(a + (off) * MR + 2);                                 \
    c20 = _mm256_fmadd_ps(av, b0, c20);                                           \
    c21 = _mm256_fmadd_ps(av, b1, c21);                                           \
    av = _mm256_broadcast_ss(a + (off) * MR + 3);                                 \
    c30 = _mm256_fmadd_ps(av, b0, c30);                                           \
    c31 = _mm256_fmadd_ps(av, b1, c31);                                           \
    av = _mm256_broadcast_ss(a + (off) * MR + 4);                                 \
    c40 = _mm256_fmadd_ps(av, b0, c40);                                           \
    c41 = _mm256_fmadd_ps(av, b1, c41);                                           \
    av = _mm256_broadcast_ss(a + (off) * MR + 5);                                 \
    c50 = _mm256_fmadd_ps(av, b0, c50);                                           \
    c51 = _mm256_fmadd_ps(av, b1, c51);                                           \
  }
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 16 * NR), _MM_HINT_T0);
    REFRAG_GEMM_STEP(0)
    REFRAG_GEMM_STEP(1)
    REFRAG_GEMM_STEP(2)
    REFRAG_GEMM_STEP(3)
    a += 4 * MR;
    b += 4 * NR;
  }
  for (; p < kc; p++) {
    REFRAG_GEMM_STEP(0)
    a += MR;
    b += NR;
  }
#undef REFRAG_GEMM_STEP
  const __m256 va = _mm256_set1_ps(alpha);
  __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    const __m256 vb = _mm256_set1_ps(beta);
    for (int r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      if (beta == 0.0f) {
        _mm256_storeu_ps(row, _mm256_mul_ps(va, acc[r][0]));
        _mm256_storeu_ps(row + 8, _mm256_mul_ps(va, acc[r][1]));
      } else {
        _mm256_storeu_ps(row, _mm256_fmadd_ps(va, acc[r][0], _mm256_mul_ps(vb, _mm256_loadu_ps(row))));
        _mm256_storeu_ps(row + 8,
                         _mm256_fmadd_ps(va, acc[r][1], _mm256_mul_ps(vb, _mm256_loadu_ps(row + 8))));
      }
    }
    return;
  }
  alignas(32) float tmp[MR][NR];
  for (int r = 0; r < MR; r++) {
    _mm256_store_ps(tmp[r], _mm256_mul_ps(va, acc[r][0]));
    _mm256_store_ps(tmp[r] + 8, _mm256_mul_ps(va, acc[r][1]));
  }
  for (int r = 0; r < mr; r++) {
    float* row = c + r * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < nr; j++) row[j] = tmp[r][j];
    } else {
      for (int j = 0; j < nr; j++) row[j] = tmp[r][j] + beta * row[j];
    }
  }
}

// One thread's share: the whole blocked loop nest over op(A) rows [0, M) and op(B) cols [0, N) of the
// given (already offset) operands.
template <typename T>
void gemm_serial(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const T* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // Balanced K slices, so K = 257 is two slices of 129 rather than 256 + 1.
  const int64_t kslices = (K + KC - 1) / KC;
  const int64_t kc_max = (K + kslices - 1) / kslices;
  const int64_t nc_max = std::min<int64_t>(NC, (N + NR - 1) / NR * NR);
  const int64_t mc_max = std::min<int64_t>(MC, (M + MR - 1) / MR * MR);
  float* bp = t_bpack.get(static_cast<size_t>(kc_max * nc_max));
  float* ap = t_apack.get(static_cast<size_t>(kc_max * mc_max));
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      pack_b(transB, B, ldb, pc, kc, jc, nc, bp);
      const float b = pc == 0 ? beta : 1.0f;
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a(transA, A, lda, ic, mc, pc, kc, ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int nr = static_cast<int>(std::min<int64_t>(NR, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
            kernel_6x16(kc, ap + ir * kc, bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, alpha, b, mr, nr);
          }
        }
      }
    }
  }
}

// The serial loop nest of the selected instruction set (AVX-512 12×32 in gemm_avx512.cc, or AVX2 6×16).
template <typename T>
void serial(bool wide, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
            int64_t lda, const T* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (wide)
    gemm_serial_avx512(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// C = beta · C for the degenerate cases (K == 0 or alpha == 0).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float* row = C + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + N, 0.0f);
    else
      for (int64_t j = 0; j < N; j++) row[j] *= beta;
  }
}

// Split C between threads along M or N into independent tasks (each packs its own operands: no
// barriers, so a task never waits for another thread). Tasks of ~256+ rows/columns handed out
// dynamically keep both cores busy when the machine is shared, at the cost of re-packing the other
// operand once per task (< 2% at that height).
template <typename T>
void gemm_parallel(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const T* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  if (threads <= 0) threads = num_threads();
  const bool wide = gemm_avx512_on != nullptr && gemm_avx512_on();
  const int64_t mr = wide ? kMR512 : MR, nr = wide ? kNR512 : NR;
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  // Below ~1 MFLOP a pool wake-up costs more than it saves.
  if (threads == 1 || flops < 1e6) {
    serial(wide, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Splitting M re-packs all of B in every task, splitting N re-packs all of A: split the larger side.
  const bool split_m = M >= N ? M >= mr * threads : N < nr * threads;
  const int64_t unit = split_m ? mr : nr;
  const int64_t len = split_m ? M : N;
  const int64_t units = (len + unit - 1) / unit;
  int64_t parts = len / 256 >= 2 * threads ? len / 256 : threads;
  parts = std::min<int64_t>(parts, units);
  parallel_tasks(parts, [&](int64_t t) {
    const int64_t b = units * t / parts * unit, e = std::min(len, units * (t + 1) / parts * unit);
    if (b >= e) return;
    if (split_m) {
      const float* a = transA ? A + b : A + b * lda;
      serial(wide, transA, transB, e - b, N, K, alpha, a, lda, B, ldb, beta, C + b * ldc, ldc);
    } else {
      const T* bb = transB ? B + b * ldb : B + b;
      serial(wide, transA, transB, M, e - b, K, alpha, A, lda, bb, ldb, beta, C + b, ldc);
    }
  });
}

}  // namespace

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc);
  // A row (or column) of A times B: a GEMV streams B once instead of packing it. lda is irrelevant for
  // one row: both layouts hold the K values contiguously.
  if (M == 1 && (transA ? lda == 1 : true)) return sgemv(transB, N, K, alpha, A, B, ldb, beta, C, threads);
  // One column of C: C^T = b^T · op(A)^T, a GEMV over A with the transpose flipped.
  if (N == 1 && ldc == 1 && (transB || ldb == 1))
    return sgemv(!transA, M, K, alpha, B, A, lda, beta, C, threads);
  gemm_parallel(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
}

void sgemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc);
  if (M == 1 && (transA ? lda == 1 : true))
    return sgemv_bf16(transB, N, K, alpha, A, B, ldb, beta, C, threads);
  gemm_parallel(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
}

}  // namespace refrag
