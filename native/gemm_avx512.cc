// Packed, register-tiled SGEMM for AVX-512 (Zen 4, Skylake-X and later), with f32 or bf16 B; runs when
// isa() == Isa::avx512, otherwise gemm.cc's AVX2 6×16 path does. Same loop nest and shapes as gemm.cc:
// op(A) M×K, op(B) K×N, C M×N, row-major; C in NC-wide column panels, K in KC-deep slices, M in
// MC-tall blocks. The 12×32 micro-tile keeps 24 zmm accumulators (12 rows × 2 vectors of 16 columns):
// per k step two B loads and twelve broadcast A values feed 24 FMAs, half the operand bytes per FLOP of
// the 6×16 tile. Edges (rows, columns, k) are handled by masked loads and stores: packs are zero-padded
// to whole 12-row / 32-column panels, and the kernel writes only the mr × nr corner of C it owns.
#include <immintrin.h>

#include <algorithm>

#include "common.h"
#include "gemm_impl.h"

// GCC 12's avx512fintrin.h builds results from _mm512_undefined_ps(), which -Wmaybe-uninitialized
// reports in every caller (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define REFRAG_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

namespace refrag {
namespace {

constexpr int MR = kMR512;
constexpr int NR = kNR512;
#ifndef REFRAG_GEMM512_KC  // overridable only for tuning builds
#define REFRAG_GEMM512_KC 256
#define REFRAG_GEMM512_MC 144
#define REFRAG_GEMM512_NC 2048
#endif
constexpr int64_t KC = REFRAG_GEMM512_KC;  // 32 KiB B micro-panel (KC × 32): L1d, shared with A
constexpr int64_t MC = REFRAG_GEMM512_MC;  // 144 KiB packed A block: L2 (1 MiB on Zen 4)
constexpr int64_t NC = REFRAG_GEMM512_NC;  // 2 MiB packed B slice: L3, read once per MC block

// Lanes [0, n) set, for n <= 0 none and n >= 16 all.
inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
// 16 values (lanes outside the mask read as 0 and are never touched in memory), bf16 widened exactly.
REFRAG_AVX512 inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
REFRAG_AVX512 inline __m512 load16(const uint16_t* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 16×16 transpose of the rows r[0..16) in place: afterwards r[j] is column j.
REFRAG_AVX512 inline void transpose16(__m512* r) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // u[4g + q], 128-bit lane k: rows 4g..4g+3 of column 4k + q.
  __m512 u[16];
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // Column 4k + q gathers lane k of u[q], u[4 + q], u[8 + q], u[12 + q]: a 4×4 transpose of lanes.
  for (int q = 0; q < 4; q++) {
    const __m512 a = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44), b = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
    const __m512 c = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
    const __m512 d = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
    r[q] = _mm512_shuffle_f32x4(a, c, 0x88), r[4 + q] = _mm512_shuffle_f32x4(a, c, 0xDD);
    r[8 + q] = _mm512_shuffle_f32x4(b, d, 0x88), r[12 + q] = _mm512_shuffle_f32x4(b, d, 0xDD);
  }
}

// op(A) rows [i0, i0+mc) × cols [p0, p0+kc) into MR-row micro-panels (kc × MR each, zero-padded).
// Reads go along stored rows, never down strided columns.
REFRAG_AVX512 void pack_a(bool transA, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                          int64_t kc, float* dst) {
  constexpr __mmask16 kRows = (1u << MR) - 1;
  if (!transA) {
    // 16 k values of the panel's rows (rows past mc and MR are zero), transposed, 12 lanes stored per k.
    for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
      const int64_t m = std::min<int64_t>(MR, mc - ir);
      for (int64_t p = 0; p < kc; p += 16) {
        const __mmask16 mk = lanes(kc - p);
        __m512 r[16];
        for (int i = 0; i < 16; i++)
          r[i] = i < m ? load16(A + (i0 + ir + i) * lda + p0 + p, mk) : _mm512_setzero_ps();
        transpose16(r);
        const int64_t n = std::min<int64_t>(16, kc - p);
        for (int q = 0; q < n; q++) _mm512_mask_storeu_ps(dst + (p + q) * MR, kRows, r[q]);
      }
    }
    return;
  }
  // op(A)(i, p) = A[p * lda + i]: stored row p0+p holds MR consecutive values of every panel.
  for (int64_t p = 0; p < kc; p++) {
    const float* src = A + (p0 + p) * lda + i0;
    float* d = dst + p * MR;
    for (int64_t ir = 0; ir < mc; ir += MR, d += kc * MR)
      _mm512_mask_storeu_ps(d, kRows, load16(src + ir, lanes(mc - ir) & kRows));
  }
}

// op(B) rows [p0, p0+kc) × cols [j0, j0+nc) into NR-column micro-panels (kc × NR each, zero-padded),
// converting bf16 to f32 on the way. Reads go along stored rows, as in pack_a.
template <typename T>
REFRAG_AVX512 void pack_b(bool transB, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                          int64_t nc, float* dst) {
  if (!transB) {
    // Stored row p0+p holds NR consecutive values of every panel.
    for (int64_t p = 0; p < kc; p++) {
      const T* src = B + (p0 + p) * ldb + j0;
      float* d = dst + p * NR;
      for (int64_t jr = 0; jr < nc; jr += NR, d += kc * NR) {
        _mm512_store_ps(d, load16(src + jr, lanes(nc - jr)));
        _mm512_store_ps(d + 16, load16(src + jr + 16, lanes(nc - jr - 16)));
      }
    }
    return;
  }
  // op(B)(p, j) = B[j * ldb + p]: panel column c is stored row j0+jr+c; 16×16 blocks are transposed.
  for (int64_t jr = 0; jr < nc; jr += NR, dst += kc * NR) {
    const int64_t n = std::min<int64_t>(NR, nc - jr);
    for (int64_t p = 0; p < kc; p += 16) {
      const __mmask16 mk = lanes(kc - p);
      const int64_t rows = std::min<int64_t>(16, kc - p);
      for (int h = 0; h < 2; h++) {
        __m512 r[16];
        for (int c = 0; c < 16; c++)
          r[c] = h * 16 + c < n ? load16(B + (j0 + jr + h * 16 + c) * ldb + p0 + p, mk) : _mm512_setzero_ps();
        transpose16(r);
        for (int q = 0; q < rows; q++) _mm512_store_ps(dst + (p + q) * NR + h * 16, r[q]);
      }
    }
  }
}

// C[mr×nr] = alpha · (Ap · Bp) + beta · C, with Ap kc×MR and Bp kc×NR packed panels; beta == 0 never
// reads C.
REFRAG_AVX512 void kernel_12x32(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                                int64_t ldc, float alpha, float beta, int mr, int nr) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int r = 0; r < mr; r++) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 31), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < kc; p++, a += MR, b += NR) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) {
    if (r >= mr) break;
    float* row = c + r * ldc;
    __m512 v0 = _mm512_mul_ps(va, acc[r][0]), v1 = _mm512_mul_ps(va, acc[r][1]);
    if (beta != 0.0f) {
      v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), v0);
      v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), v1);
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

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
            kernel_12x32(kc, ap + ir * kc, bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, alpha, b, mr, nr);
          }
        }
      }
    }
  }
}

}  // namespace

bool gemm_avx512_on() { return isa() == Isa::avx512; }

void gemm_serial_avx512(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
  gemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_serial_avx512(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
  gemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace refrag
