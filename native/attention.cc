// Fused scaled-dot-product attention, forward and backward, flash style (no Tq×Tk matrix).
// Shapes: B batch, Tq/Tk query/key tokens, Hq/Hkv heads, D head dim. q, out: [B, Tq, Hq, D];
// k, v: [B, Tk, Hkv, D] (token-major); lse: [B, Hq, Tq]. Query head h reads kv head h / (Hq / Hkv).
// Query row i sees the key prefix [0, lim): lim = min(kvLen[b] or Tk, causal ? qOffset + i + 1 : Tk).
// Rows that see no key get out = 0, lse = -inf and no gradient. The TypeScript reference is the spec.
//
// Layout of the work: key/value heads are packed once per call into tiles (Kᵀ blocks D×BC, V rows padded
// to Dp = D rounded up to 8) so the two block products are small register-tiled AVX2 GEMMs; query
// blocks of BR rows run an online softmax over key blocks. Few query rows (decode) take a direct path
// that streams the token-major cache once, in address order, split into key ranges across threads.
// Backward (flash-attention-2): one task per (batch, kv head, key block) owns its dK, dV rows; dQ goes to
// per-worker buffers summed at the end, with a static work split so results do not depend on timing.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "checks.h"
#include "common.h"
#include "pool.h"
#include "weights_simd.h"

// GCC 12's avx512fintrin.h builds results from self-initialised undefined vectors, which
// -W(maybe-)uninitialized reports in every caller (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define AVX2 __attribute__((target("avx2,fma")))

namespace refrag {
namespace {

constexpr int64_t BR = 64;           // query rows per tile
constexpr int64_t BC = 64;           // keys per tile
constexpr int64_t DIRECT_MAX_TQ = 16;  // at most this many query rows: decode path
constexpr float NEG_INF = -std::numeric_limits<float>::infinity();

inline int64_t round8(int64_t x) { return (x + 7) & ~int64_t(7); }

struct Shape {
  int64_t B, Tq, Tk, Hq, Hkv, D, qOffset;
  bool causal;
  float scale;
  const int32_t* kvLen;  // null: all Tk keys valid
  int64_t group() const { return Hq / Hkv; }
  int64_t Dp() const { return round8(D); }
  int64_t limit(int64_t b, int64_t i) const {
    int64_t lim = kvLen ? kvLen[b] : Tk;
    if (causal) lim = std::min(lim, qOffset + i + 1);
    return std::max<int64_t>(lim, 0);
  }
  // Largest limit over rows [i0, i0 + rows): the keys a query block touches at all.
  int64_t block_limit(int64_t b, int64_t i0, int64_t rows) const { return limit(b, i0 + rows - 1); }
};

// ---- vector helpers ---------------------------------------------------------------------------------

AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AVX2 inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes [0, n) set (n clamped to 0..8): masks loads of ragged tails and invalid keys.
AVX2 inline __m256i lane_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int32_t c = static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(n, 0), 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), idx);
}

// e^x (Cephes polynomial, ~1 ulp in float). Inputs are clamped; callers mask out invalid lanes.
AVX2 inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3365f)), _mm256_set1_ps(88.0f));
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// ---- the block product ------------------------------------------------------------------------------
// C[M×N] (=|+=) A·B with A(i, k) at A[i·rsa + k·csa] (so Aᵀ is free) and B row-major (ldb). N is a
// multiple of 8. Register tile: MR rows × NV vectors of 8 (6×16 uses 12 accumulators of 16 registers).

template <int MR, int NV>
AVX2 void tile(int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B, int64_t ldb, float* C,
               int64_t ldc, bool acc) {
  __m256 c[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) c[i][v] = acc ? _mm256_loadu_ps(C + i * ldc + 8 * v) : _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    __m256 b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) b[v] = _mm256_loadu_ps(B + k * ldb + 8 * v);
    const float* a = A + k * csa;
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      __m256 ai = _mm256_broadcast_ss(a + i * rsa);
#pragma GCC unroll 2
      for (int v = 0; v < NV; v++) c[i][v] = _mm256_fmadd_ps(ai, b[v], c[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) _mm256_storeu_ps(C + i * ldc + 8 * v, c[i][v]);
}

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, bool);
constexpr TileFn kTiles[2][7] = {
    {nullptr, tile<1, 1>, tile<2, 1>, tile<3, 1>, tile<4, 1>, tile<5, 1>, tile<6, 1>},
    {nullptr, tile<1, 2>, tile<2, 2>, tile<3, 2>, tile<4, 2>, tile<5, 2>, tile<6, 2>},
};

// The same tile with 512-bit vectors (16 columns each), used only when isa() == avx512.
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
template <int MR, int NV>
AVX512 void tile512(int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B, int64_t ldb, float* C,
                    int64_t ldc, bool acc) {
  __m512 c[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) c[i][v] = acc ? _mm512_loadu_ps(C + i * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    __m512 b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_ps(B + k * ldb + 16 * v);
    const float* a = A + k * csa;
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      __m512 ai = _mm512_set1_ps(a[i * rsa]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; v++) c[i][v] = _mm512_fmadd_ps(ai, b[v], c[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(C + i * ldc + 16 * v, c[i][v]);
}

constexpr TileFn kTiles512[2][7] = {
    {nullptr, tile512<1, 1>, tile512<2, 1>, tile512<3, 1>, tile512<4, 1>, tile512<5, 1>, tile512<6, 1>},
    {nullptr, tile512<1, 2>, tile512<2, 2>, tile512<3, 2>, tile512<4, 2>, tile512<5, 2>, tile512<6, 2>},
};

void block_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B,
                int64_t ldb, float* C, int64_t ldc, bool acc) {
  int64_t n = 0;
  if (isa() == Isa::avx512) {  // panels of 32 (or 16) columns; a ragged 8 falls through to AVX2
    while (n + 16 <= N) {
      const int nv = n + 32 <= N ? 2 : 1;
      for (int64_t m = 0; m < M; m += 6) {
        const int mr = static_cast<int>(std::min<int64_t>(6, M - m));
        kTiles512[nv - 1][mr](K, A + m * rsa, rsa, csa, B + n, ldb, C + m * ldc + n, ldc, acc);
      }
      n += 16 * nv;
    }
  }
  for (; n < N; n += 16) {
    const int nv = n + 16 <= N ? 2 : 1;
    for (int64_t m = 0; m < M; m += 6) {
      const int mr = static_cast<int>(std::min<int64_t>(6, M - m));
      kTiles[nv - 1][mr](K, A + m * rsa, rsa, csa, B + n, ldb, C + m * ldc + n, ldc, acc);
    }
  }
}

// ---- packing ----------------------------------------------------------------------------------------

// 8×8 transpose: dst[r·ldd + c] = src[c·lds + r].
AVX2 inline void transpose8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// Kᵀ tile of keys [j0, j0 + nk) of one kv head: kt[d·BC + c] = k[j0 + c][d], zero past nk.
AVX2 void pack_kt(const float* k, int64_t stride, int64_t j0, int64_t nk, int64_t D, float* kt) {
  for (int64_t d = 0; d < D; d++) std::fill(kt + d * BC + nk, kt + (d + 1) * BC, 0.0f);
  const float* k0 = k + j0 * stride;
  const int64_t c8 = nk & ~int64_t(7), d8 = D & ~int64_t(7);
  for (int64_t c = 0; c < c8; c += 8)
    for (int64_t d = 0; d < d8; d += 8) transpose8(k0 + c * stride + d, stride, kt + d * BC + c, BC);
  for (int64_t c = 0; c < nk; c++)
    for (int64_t d = c < c8 ? d8 : 0; d < D; d++) kt[d * BC + c] = k0[c * stride + d];
}

// Rows [j0, j0 + n) of a token-major head into rows of Dp floats, zero padded.
void pack_rows(const float* x, int64_t stride, int64_t j0, int64_t n, int64_t D, int64_t Dp, float* dst) {
  for (int64_t c = 0; c < n; c++) {
    std::memcpy(dst + c * Dp, x + (j0 + c) * stride, D * sizeof(float));
    std::fill(dst + c * Dp + D, dst + (c + 1) * Dp, 0.0f);
  }
}

// ---- forward, tiled ---------------------------------------------------------------------------------

// K and V are f32, or bf16 bits (a bf16 KV cache, decode path only): widened exactly as they are read.
template <typename T>
struct FwdIoT {
  const float* q;
  const T *k, *v;
  float *out, *lse;
};
using FwdIo = FwdIoT<float>;

// One softmax step for a row of scores s[0, np): scales, masks columns >= nvalid, updates the running max
// m and sum l, writes p in place and returns the factor the row's accumulated output must be scaled by.
AVX2 float online_softmax_row(float* s, int64_t np, int64_t nvalid, float scale, float& m, float& l) {
  if (nvalid <= 0) {
    std::fill(s, s + np, 0.0f);
    return 1.0f;
  }
  const __m256 vscale = _mm256_set1_ps(scale);
  __m256 vmax = _mm256_set1_ps(NEG_INF);
  for (int64_t c = 0; c < np; c += 8) {
    __m256 x = _mm256_loadu_ps(s + c);
    if (scale != 1.0f) {  // callers with pre-scaled queries pass 1
      x = _mm256_mul_ps(x, vscale);
      _mm256_storeu_ps(s + c, x);
    }
    __m256 valid = _mm256_castsi256_ps(lane_mask(nvalid - c));
    vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(_mm256_set1_ps(NEG_INF), x, valid));
  }
  const float mnew = std::max(m, hmax(vmax));
  const float alpha = m == NEG_INF ? 0.0f : std::exp(m - mnew);
  const __m256 vm = _mm256_set1_ps(mnew);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t c = 0; c < np; c += 8) {
    __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + c), vm));
    p = _mm256_and_ps(p, _mm256_castsi256_ps(lane_mask(nvalid - c)));
    _mm256_storeu_ps(s + c, p);
    vsum = _mm256_add_ps(vsum, p);
  }
  l = l * alpha + hsum(vsum);
  m = mnew;
  return alpha;
}

// kt: packed Kᵀ tiles of this (b, kv head); vp: its V rows [Tk, Dp].
AVX2 void forward_block(const Shape& sh, const FwdIo& io, int64_t b, int64_t h, int64_t i0, const float* kt,
                        const float* vp) {
  const int64_t D = sh.D, Dp = sh.Dp(), rows = std::min(BR, sh.Tq - i0);
  thread_local std::vector<float> scratch;
  scratch.resize(BR * BC + 2 * BR * Dp + 2 * BR);
  float* S = scratch.data();
  float* O = S + BR * BC;
  float* Q = O + BR * Dp;  // the query block, contiguous (token-major rows alias in L1 sets)
  float* m = Q + BR * Dp;
  float* l = m + BR;
  std::fill(O, O + rows * Dp, 0.0f);
  std::fill(m, m + rows, NEG_INF);
  std::fill(l, l + rows, 0.0f);
  pack_rows(io.q + ((b * sh.Tq + i0) * sh.Hq + h) * D, sh.Hq * D, 0, rows, D, Dp, Q);
  const __m256 vscale = _mm256_set1_ps(sh.scale);  // pre-scaled queries: scores come out scaled
  for (int64_t x = 0; x < rows * Dp; x += 8) _mm256_storeu_ps(Q + x, _mm256_mul_ps(vscale, _mm256_loadu_ps(Q + x)));
  const int64_t maxlim = sh.block_limit(b, i0, rows);
  for (int64_t j0 = 0; j0 < maxlim; j0 += BC) {
    const int64_t ncols = std::min(BC, maxlim - j0), np = round8(ncols);
    block_gemm(rows, np, D, Q, Dp, 1, kt + (j0 / BC) * D * BC, BC, S, BC, false);
    // Long sequences keep K and V in L3: fetch the next key block while the softmax runs.
    const float* kt_next = kt + (j0 / BC + 1) * D * BC;
    const float* vp_next = vp + (j0 + BC) * Dp;
    const int64_t next_lines = j0 + BC < maxlim ? D * BC / 16 : 0, per_row = (next_lines + rows - 1) / rows;
    for (int64_t r = 0; r < rows; r++) {
      for (int64_t x = r * per_row; x < std::min(next_lines, (r + 1) * per_row); x++) {
        _mm_prefetch(reinterpret_cast<const char*>(kt_next + 16 * x), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(vp_next + 16 * x), _MM_HINT_T0);
      }
      const float alpha =
          online_softmax_row(S + r * BC, np, sh.limit(b, i0 + r) - j0, 1.0f, m[r], l[r]);
      if (alpha != 1.0f) {
        const __m256 va = _mm256_set1_ps(alpha);
        for (int64_t d = 0; d < Dp; d += 8)
          _mm256_storeu_ps(O + r * Dp + d, _mm256_mul_ps(va, _mm256_loadu_ps(O + r * Dp + d)));
      }
    }
    block_gemm(rows, Dp, ncols, S, BC, 1, vp + j0 * Dp, Dp, O, Dp, true);
  }
  for (int64_t r = 0; r < rows; r++) {
    float* o = io.out + ((b * sh.Tq + i0 + r) * sh.Hq + h) * D;
    float* lse = io.lse + (b * sh.Hq + h) * sh.Tq + i0 + r;
    if (l[r] == 0.0f) {
      std::fill(o, o + D, 0.0f);
      *lse = NEG_INF;
      continue;
    }
    const float inv = 1.0f / l[r];
    for (int64_t d = 0; d < D; d++) o[d] = O[r * Dp + d] * inv;
    *lse = m[r] + std::log(l[r]);
  }
}

void forward_tiled(const Shape& sh, const FwdIo& io) {
  const int64_t D = sh.D, Dp = sh.Dp(), nblk = (sh.Tk + BC - 1) / BC;
  const int64_t kt_size = nblk * D * BC, vp_size = sh.Tk * Dp, heads = sh.B * sh.Hkv;
  // Kept between calls (per calling thread): fresh pages for megabytes of packs cost page faults each call.
  // Raw pointers: inside the pool's lambdas the names would refer to each worker's own thread_local.
  thread_local std::vector<float> kt_buf, vp_buf;
  if (kt_buf.size() < size_t(heads * kt_size)) kt_buf = std::vector<float>(heads * kt_size);
  if (vp_buf.size() < size_t(heads * vp_size)) vp_buf = std::vector<float>(heads * vp_size);
  float* kt = kt_buf.data();
  float* vp = vp_buf.data();
  parallel_tasks(heads * nblk, [&](int64_t t) {
    const int64_t bg = t / nblk, blk = t % nblk, b = bg / sh.Hkv, g = bg % sh.Hkv;
    const int64_t stride = sh.Hkv * D, j0 = blk * BC, nk = std::min(BC, sh.Tk - j0);
    const float* kh = io.k + (b * sh.Tk * sh.Hkv + g) * D;
    const float* vh = io.v + (b * sh.Tk * sh.Hkv + g) * D;
    pack_kt(kh, stride, j0, nk, D, kt + bg * kt_size + blk * D * BC);
    pack_rows(vh, stride, j0, nk, D, Dp, vp + bg * vp_size + j0 * Dp);
  });
  const int64_t nqb = (sh.Tq + BR - 1) / BR;
  // Causal blocks late in the sequence cost most: every head's last block goes out first.
  const int64_t nbh = sh.B * sh.Hq;
  parallel_tasks(nbh * nqb, [&](int64_t t) {
    const int64_t qb = nqb - 1 - t / nbh, bh = t % nbh, b = bh / sh.Hq, h = bh % sh.Hq;
    const int64_t bg = b * sh.Hkv + h / sh.group();
    forward_block(sh, io, b, h, qb * BR, kt + bg * kt_size, vp + bg * vp_size);
  });
}

// ---- forward, direct (decode) -----------------------------------------------------------------------

// Dot products of q with 8 consecutive keys (row stride ks).
template <typename T>
AVX2 inline __m256 dot8(const float* q, const T* k, int64_t ks, int64_t D) {
  __m256 a[8];
  for (int u = 0; u < 8; u++) a[u] = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
    for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(qv, load8(k + u * ks + d), a[u]);
  }
  if (d < D) {
    const __m256i mk = lane_mask(D - d);
    const __m256 qv = _mm256_maskload_ps(q + d, mk);
#pragma GCC unroll 8
    for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(qv, load8_part(k + u * ks + d, static_cast<int>(D - d)), a[u]);
  }
  __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

template <typename T>
AVX2 inline float dot1(const float* q, const T* k, int64_t D) {
  __m256 a = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load8(k + d), a);
  if (d < D) {
    const __m256i mk = lane_mask(D - d);
    a = _mm256_fmadd_ps(_mm256_maskload_ps(q + d, mk), load8_part(k + d, static_cast<int>(D - d)), a);
  }
  return hsum(a);
}

// Continues the online softmax of one query row over keys [c0, c0 + n) (n <= 256) read straight from
// the token-major cache; o[Dp] holds the unnormalised output, m and l the running max and sum.
template <typename T>
AVX2 void direct_update(const Shape& sh, const float* q, const T* kh, const T* vh, int64_t c0, int64_t n,
                        float* o, float& m, float& l) {
  const int64_t D = sh.D, Dp = sh.Dp(), stride = sh.Hkv * D;
  alignas(32) float s[256];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_store_ps(s + j, dot8(q, kh + (c0 + j) * stride, stride, D));
  for (; j < n; j++) s[j] = dot1(q, kh + (c0 + j) * stride, D);
  const float alpha = online_softmax_row(s, round8(n), n, sh.scale, m, l);
  // o = alpha·o + Σ_j p_j v_j, four vectors of the row at a time kept in registers.
  for (int64_t d0 = 0; d0 < Dp; d0 += 32) {
    const int nv = static_cast<int>(std::min<int64_t>(4, (Dp - d0) / 8));
    __m256 acc[4];
    for (int u = 0; u < 4; u++) {
      acc[u] = u < nv ? _mm256_mul_ps(_mm256_set1_ps(alpha), _mm256_loadu_ps(o + d0 + 8 * u)) : _mm256_setzero_ps();
    }
    const T* vrow = vh + c0 * stride + d0;
    if (nv == 4 && d0 + 32 <= D) {
      for (int64_t jj = 0; jj < n; jj++, vrow += stride) {
        const __m256 p = _mm256_broadcast_ss(s + jj);
        for (int u = 0; u < 4; u++) acc[u] = _mm256_fmadd_ps(p, load8(vrow + 8 * u), acc[u]);
      }
    } else {
      for (int64_t jj = 0; jj < n; jj++, vrow += stride) {
        const __m256 p = _mm256_broadcast_ss(s + jj);
        for (int u = 0; u < nv; u++) {
          const int m = static_cast<int>(std::min<int64_t>(8, D - d0 - 8 * u));
          acc[u] = _mm256_fmadd_ps(p, load8_part(vrow + 8 * u, m), acc[u]);
        }
      }
    }
    for (int u = 0; u < nv; u++) _mm256_storeu_ps(o + d0 + 8 * u, acc[u]);
  }
}

constexpr int64_t CH = 32;  // keys per chunk of the direct path: 32 × Hkv × D floats of K and of V stay in L2

// Every cache line of one cache row (n values), into L2.
template <typename T>
inline void prefetch_row(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  const int64_t bytes = int64_t(sizeof(T)) * n;
  for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(c + b, _MM_HINT_T1);
  _mm_prefetch(c + bytes - 1, _MM_HINT_T1);
}

// One query row (Tq = 1, decode) of every head over keys [c0, c0 + n), n <= CH: per head exactly
// direct_update's arithmetic (the same dot8 / dot1 scores, online softmax, and per output the same fma
// chain over the keys in order), with the loops turned so the cache is read in address order: the scores
// of all heads for 8 keys at a time, then each key's value row for all heads at once, one zmm register per
// 16 outputs (NV = Hq·D / 16 of them). Needs D % 16 == 0. When ahead >= 0 (a cache that streams from
// memory), this chunk's value rows are prefetched into L2 while the scores are computed, and the next
// `ahead` key rows while the values are summed. From memory, 4k positions (bench:decode-memory): per-head
// loops ~8 GB/s, all heads ~13, with the prefetch ~18 (the core's read bandwidth: ~27).
// st: per head h, o[D], m, l at st + h·(D + 2).
template <typename T, int NV>
__attribute__((target("avx512f,avx2,fma"))) void direct_update_heads(const Shape& sh, const float* q, const T* k,
                                                                   const T* v, int64_t c0, int64_t n,
                                                                   int64_t ahead, float* st) {
  const int64_t D = sh.D, Hq = sh.Hq, g = sh.group(), stride = sh.Hkv * D, W = D + 2;
  alignas(32) float s[NV][CH];  // s[h][j]; Hq = 16·NV / D <= NV
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    if (ahead >= 0)
      for (int64_t u = j; u < j + 8; u++) prefetch_row(v + (c0 + u) * stride, stride);
    for (int64_t h = 0; h < Hq; h++)
      _mm256_store_ps(s[h] + j, dot8(q + h * D, k + (c0 + j) * stride + (h / g) * D, stride, D));
  }
  for (; j < n; j++) {
    if (ahead >= 0) prefetch_row(v + (c0 + j) * stride, stride);
    for (int64_t h = 0; h < Hq; h++) s[h][j] = dot1(q + h * D, k + (c0 + j) * stride + (h / g) * D, D);
  }
  float alpha[NV] = {};  // per head, Hq <= NV
  for (int64_t h = 0; h < Hq; h++)
    alpha[h] = online_softmax_row(s[h], round8(n), n, sh.scale, st[h * W + D], st[h * W + D + 1]);
  // Output vector u: head hu[u], floats [du[u], du[u] + 16) of its D; its value segment at vo[u] in a row.
  int64_t hu[NV], du[NV], vo[NV];
  __m512 acc[NV];
#pragma GCC unroll 16
  for (int u = 0; u < NV; u++) {
    hu[u] = 16 * u / D, du[u] = 16 * u % D, vo[u] = (hu[u] / g) * D + du[u];
    acc[u] = _mm512_mul_ps(_mm512_set1_ps(alpha[hu[u]]), _mm512_loadu_ps(st + hu[u] * W + du[u]));
  }
  for (int64_t jj = 0; jj < n; jj++) {
    if (jj < ahead) prefetch_row(k + (c0 + CH + jj) * stride, stride);
    const T* vrow = v + (c0 + jj) * stride;
#pragma GCC unroll 16
    for (int u = 0; u < NV; u++)
      acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(s[hu[u]][jj]), load16(vrow + vo[u]), acc[u]);
  }
#pragma GCC unroll 16
  for (int u = 0; u < NV; u++) _mm512_storeu_ps(st + hu[u] * W + du[u], acc[u]);
}

template <typename T>
using HeadsFn = void (*)(const Shape&, const float*, const T*, const T*, int64_t, int64_t, int64_t, float*);
template <typename T, int... I>
constexpr std::array<HeadsFn<T>, sizeof...(I)> heads_table(std::integer_sequence<int, I...>) {
  return {&direct_update_heads<T, I + 1>...};
}

// Past this many bytes of K and V read by one call (all its rows), the cache is taken to stream from L3 or
// memory (a decode step reads every layer's cache plus the weights): the all-heads path prefetches. From
// memory that saves ~25% (one row at 4k positions; a 32-row step at 150: 12.4 -> 10.7 ms); from cache it
// costs ~10-25% (bench:decode-memory, hot rows).
constexpr int64_t kStreamBytes = int64_t(1) << 20;

// Few query rows against a long cache: each task takes one batch and one contiguous key range and walks
// it in chunks, every query row of every head consuming a chunk while it is in cache, so the cache is
// read once, in address order. Per-range partial softmax states are merged at the end. `stream`: the
// call's cache is past kStreamBytes.
template <typename T>
void forward_direct(const Shape& sh, const FwdIoT<T>& io, bool stream) {
  const int64_t D = sh.D, Dp = sh.Dp(), rows = sh.Hq * sh.Tq, W = Dp + 2;
  // One query row with every head's outputs in at most 16 zmm registers: all heads at once.
  static constexpr auto heads = heads_table<T>(std::make_integer_sequence<int, 16>());
  const bool together = sh.Tq == 1 && isa() == Isa::avx512 && D % 16 == 0 && sh.Hq * D <= 16 * 16;
  int64_t nsplit = (4 * num_threads() + sh.B - 1) / sh.B;
  nsplit = std::max<int64_t>(1, std::min(nsplit, (sh.Tk + 255) / 256));
  const int64_t span = (sh.Tk + nsplit - 1) / nsplit;
  std::vector<float> part(sh.B * nsplit * rows * W);  // per (b, split, h, i): o[Dp], m, l
  parallel_tasks(sh.B * nsplit, [&](int64_t t) {
    const int64_t b = t / nsplit, sp = t % nsplit;
    float* st = part.data() + t * rows * W;
    for (int64_t r = 0; r < rows; r++) {
      std::fill(st + r * W, st + r * W + Dp, 0.0f);
      st[r * W + Dp] = NEG_INF;
      st[r * W + Dp + 1] = 0.0f;
    }
    const int64_t ks = sp * span, ke = std::min(sh.block_limit(b, 0, sh.Tq), ks + span);
    for (int64_t c0 = ks; c0 < ke; c0 += CH) {
      if (together) {
        const int64_t n = std::min(std::min(CH, ke - c0), sh.limit(b, 0) - c0);
        const int64_t base = b * sh.Tk * sh.Hkv * D;
        // Keys of the next chunk to prefetch; -1: none, not even this chunk's values.
        const int64_t ahead = stream ? std::max<int64_t>(0, std::min(CH, ke - c0 - CH)) : -1;
        if (n > 0) heads[sh.Hq * D / 16 - 1](sh, io.q + b * sh.Hq * D, io.k + base, io.v + base, c0, n, ahead, st);
        continue;
      }
      for (int64_t h = 0; h < sh.Hq; h++) {
        const T* kh = io.k + (b * sh.Tk * sh.Hkv + h / sh.group()) * D;
        const T* vh = io.v + (b * sh.Tk * sh.Hkv + h / sh.group()) * D;
        for (int64_t i = 0; i < sh.Tq; i++) {
          const int64_t n = std::min(std::min(CH, ke - c0), sh.limit(b, i) - c0);
          if (n <= 0) continue;
          float* o = st + (h * sh.Tq + i) * W;
          direct_update(sh, io.q + ((b * sh.Tq + i) * sh.Hq + h) * D, kh, vh, c0, n, o, o[Dp], o[Dp + 1]);
        }
      }
    }
  });
  parallel_for(sh.B * rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t b = row / rows, hi = row % rows, h = hi / sh.Tq, i = hi % sh.Tq;
      float* o = io.out + ((b * sh.Tq + i) * sh.Hq + h) * D;
      float* lse = io.lse + (b * sh.Hq + h) * sh.Tq + i;
      const float* p0 = part.data() + (b * nsplit * rows + hi) * W;
      const int64_t ps = rows * W;  // from one split's state to the next
      float mmax = NEG_INF;
      for (int64_t s = 0; s < nsplit; s++) mmax = std::max(mmax, p0[s * ps + Dp]);
      std::fill(o, o + D, 0.0f);
      if (mmax == NEG_INF) {
        *lse = NEG_INF;
        continue;
      }
      float l = 0.0f;
      for (int64_t s = 0; s < nsplit; s++) {
        const float* p = p0 + s * ps;
        if (p[Dp] == NEG_INF) continue;
        const float w = std::exp(p[Dp] - mmax);
        l += w * p[Dp + 1];
        for (int64_t d = 0; d < D; d++) o[d] += w * p[d];
      }
      const float inv = 1.0f / l;
      for (int64_t d = 0; d < D; d++) o[d] *= inv;
      *lse = mmax + std::log(l);
    }
  });
}

// ---- backward ---------------------------------------------------------------------------------------

struct BwdIo {
  const float *q, *k, *v, *out, *lse, *dout;
  float *dq, *dk, *dv;
};

struct BwdPacked {
  std::vector<float> q, dout, di;  // [B, Hq, Tq, Dp], [B, Hq, Tq, Dp], [B, Hq, Tq]
};

// Key block kb of kv head g: accumulates its dK, dV over every query head of the group and every query
// block that sees it, writes them, and adds dS·K (unscaled) into this worker's dq buffer [B, Hq, Tq, Dp].
AVX2 void backward_key_block(const Shape& sh, const BwdIo& io, const BwdPacked& pk, int64_t b, int64_t g,
                             int64_t kb, float* dqw) {
  const int64_t D = sh.D, Dp = sh.Dp(), stride = sh.Hkv * D, j0 = kb * BC, nk = std::min(BC, sh.Tk - j0);
  thread_local std::vector<float> scratch;
  scratch.resize(2 * D * BC + 3 * BC * Dp + 2 * BR * BC);
  float* kt = scratch.data();
  float* vt = kt + D * BC;
  float* kr = vt + D * BC;
  float* dK = kr + BC * Dp;
  float* dV = dK + BC * Dp;
  float* P = dV + BC * Dp;
  float* dS = P + BR * BC;
  const float* kh = io.k + (b * sh.Tk * sh.Hkv + g) * D;
  const float* vh = io.v + (b * sh.Tk * sh.Hkv + g) * D;
  pack_kt(kh, stride, j0, nk, D, kt);
  pack_kt(vh, stride, j0, nk, D, vt);
  pack_rows(kh, stride, j0, nk, D, Dp, kr);
  std::fill(dK, dK + 2 * BC * Dp, 0.0f);
  const __m256 vscale = _mm256_set1_ps(sh.scale);
  for (int64_t h = g * sh.group(); h < (g + 1) * sh.group(); h++) {
    const int64_t bh = b * sh.Hq + h;
    for (int64_t i0 = 0; i0 < sh.Tq; i0 += BR) {
      const int64_t rows = std::min(BR, sh.Tq - i0), maxlim = std::min(sh.block_limit(b, i0, rows), j0 + nk);
      if (maxlim <= j0) continue;
      const int64_t ncols = maxlim - j0, np = round8(ncols);
      const float* Q = pk.q.data() + (bh * sh.Tq + i0) * Dp;
      const float* dO = pk.dout.data() + (bh * sh.Tq + i0) * Dp;
      const float* lse = io.lse + bh * sh.Tq + i0;
      const float* di = pk.di.data() + bh * sh.Tq + i0;
      block_gemm(rows, np, D, Q, Dp, 1, kt, BC, P, BC, false);   // S = Q Kᵀ
      block_gemm(rows, np, D, dO, Dp, 1, vt, BC, dS, BC, false);  // dP = dO Vᵀ
      for (int64_t r = 0; r < rows; r++) {
        const int64_t nvalid = sh.limit(b, i0 + r) - j0;
        const __m256 vl = _mm256_set1_ps(lse[r]), vd = _mm256_set1_ps(di[r]);
        float* pr = P + r * BC;
        float* dsr = dS + r * BC;
        for (int64_t c = 0; c < np; c += 8) {
          __m256 p = exp256(_mm256_fmsub_ps(_mm256_loadu_ps(pr + c), vscale, vl));
          p = _mm256_and_ps(p, _mm256_castsi256_ps(lane_mask(nvalid - c)));
          _mm256_storeu_ps(pr + c, p);
          _mm256_storeu_ps(dsr + c, _mm256_mul_ps(p, _mm256_sub_ps(_mm256_loadu_ps(dsr + c), vd)));
        }
      }
      block_gemm(ncols, Dp, rows, P, 1, BC, dO, Dp, dV, Dp, true);                 // dV += Pᵀ dO
      block_gemm(ncols, Dp, rows, dS, 1, BC, Q, Dp, dK, Dp, true);                 // dK += dSᵀ Q
      block_gemm(rows, Dp, ncols, dS, BC, 1, kr, Dp, dqw + (bh * sh.Tq + i0) * Dp, Dp, true);  // dQ += dS K
    }
  }
  for (int64_t c = 0; c < nk; c++) {
    float* dk = io.dk + ((b * sh.Tk + j0 + c) * sh.Hkv + g) * D;
    float* dv = io.dv + ((b * sh.Tk + j0 + c) * sh.Hkv + g) * D;
    for (int64_t d = 0; d < D; d++) {
      dk[d] = sh.scale * dK[c * Dp + d];
      dv[d] = dV[c * Dp + d];
    }
  }
}

void backward(const Shape& sh, const BwdIo& io) {
  const int64_t D = sh.D, Dp = sh.Dp(), nq = sh.B * sh.Hq * sh.Tq;
  BwdPacked pk;
  pk.q.resize(nq * Dp);
  pk.dout.resize(nq * Dp);
  pk.di.resize(nq);
  parallel_for(nq, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t i = row % sh.Tq, bh = row / sh.Tq, b = bh / sh.Hq, h = bh % sh.Hq;
      const int64_t at = ((b * sh.Tq + i) * sh.Hq + h) * D;
      pack_rows(io.q + at, 0, 0, 1, D, Dp, pk.q.data() + row * Dp);
      pack_rows(io.dout + at, 0, 0, 1, D, Dp, pk.dout.data() + row * Dp);
      double di = 0;
      for (int64_t d = 0; d < D; d++) di += double(io.dout[at + d]) * io.out[at + d];
      pk.di[row] = static_cast<float>(di);
    }
  });

  // Items are (b, kv head, key block). Their cost is known up front, so they are assigned to workers
  // statically (largest first, to the least loaded): dq sums then happen in a fixed order, and the result
  // does not depend on thread timing.
  const int64_t nkb = (sh.Tk + BC - 1) / BC, nitems = sh.B * sh.Hkv * nkb;
  std::vector<std::pair<int64_t, int64_t>> items;  // (cost, item)
  for (int64_t it = 0; it < nitems; it++) {
    const int64_t b = it / (sh.Hkv * nkb), j0 = (it % nkb) * BC;
    int64_t cost = 0;
    for (int64_t i0 = 0; i0 < sh.Tq; i0 += BR) {
      const int64_t rows = std::min(BR, sh.Tq - i0);
      if (sh.block_limit(b, i0, rows) > j0) cost += rows;
    }
    if (cost > 0) items.push_back({cost * sh.group() + 1, it});
  }
  std::stable_sort(items.begin(), items.end(), [](auto& x, auto& y) { return x.first > y.first; });
  const int64_t nw = std::max<int64_t>(1, std::min<int64_t>(num_threads(), int64_t(items.size())));
  std::vector<std::vector<int64_t>> work(nw);
  std::vector<int64_t> load(nw, 0);
  for (auto& [cost, it] : items) {
    const int64_t w = std::min_element(load.begin(), load.end()) - load.begin();
    work[w].push_back(it);
    load[w] += cost;
  }
  std::vector<float> dqw(nw * nq * Dp, 0.0f);
  std::fill(io.dk, io.dk + sh.B * sh.Tk * sh.Hkv * D, 0.0f);
  std::fill(io.dv, io.dv + sh.B * sh.Tk * sh.Hkv * D, 0.0f);
  parallel_tasks(nw, [&](int64_t w) {
    for (int64_t it : work[w]) {
      const int64_t b = it / (sh.Hkv * nkb), g = (it / nkb) % sh.Hkv, kb = it % nkb;
      backward_key_block(sh, io, pk, b, g, kb, dqw.data() + w * nq * Dp);
    }
  });
  parallel_for(nq, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t i = row % sh.Tq, bh = row / sh.Tq, b = bh / sh.Hq, h = bh % sh.Hq;
      float* dq = io.dq + ((b * sh.Tq + i) * sh.Hq + h) * D;
      for (int64_t d = 0; d < D; d++) {
        float acc = 0.0f;
        for (int64_t w = 0; w < nw; w++) acc += dqw[(w * nq + row) * Dp + d];
        dq[d] = sh.scale * acc;
      }
    }
  });
}

// ---- JS entry points --------------------------------------------------------------------------------

// Sizes are exact integers within the int32 range; every product is formed in 64 bits with overflow
// checks, and the scratch a call would allocate is bounded, before any array is touched.
constexpr int64_t kMaxWorkspaceFloats = int64_t(1) << 27;  // 512 MiB of packs and partial sums per call

struct Sizes {
  Shape sh;
  int64_t nq, nk, nlse;  // elements of q/out/dq, k/v/dk/dv, lse
  std::string dims;
};

Sizes parse_shape(const Args& a, bool backward_pass) {
  Sizes z;
  Shape& sh = z.sh;
  sh.B = dim_arg(a, 0, "B", 1);
  sh.Tq = dim_arg(a, 1, "Tq");
  sh.Tk = dim_arg(a, 2, "Tk");
  sh.Hq = dim_arg(a, 3, "Hq", 1);
  sh.Hkv = dim_arg(a, 4, "Hkv", 1);
  sh.D = dim_arg(a, 5, "D", 1);
  sh.qOffset = dim_arg(a, 6, "qOffset");
  sh.causal = a.flag(7);
  sh.scale = static_cast<float>(finite_arg(a, 8, "scale"));
  z.dims = "(B=" + std::to_string(sh.B) + " Tq=" + std::to_string(sh.Tq) + " Tk=" + std::to_string(sh.Tk) +
           " Hq=" + std::to_string(sh.Hq) + " Hkv=" + std::to_string(sh.Hkv) + " D=" + std::to_string(sh.D) +
           " qOffset=" + std::to_string(sh.qOffset) + ")";
  a.require(sh.Hq % sh.Hkv == 0, "Hq must be a multiple of Hkv " + z.dims);
  z.nq = checked_product(a, {sh.B, sh.Tq, sh.Hq, sh.D}, "q " + z.dims);
  z.nk = checked_product(a, {sh.B, sh.Tk, sh.Hkv, sh.D}, "k " + z.dims);
  z.nlse = checked_product(a, {sh.B, sh.Hq, sh.Tq}, "lse " + z.dims);
  // Scratch of the path this call takes (all terms are bounded by the products above times small factors).
  // Doubles: the terms cannot overflow, and the comparison needs no exactness.
  const double B = double(sh.B), Dp = double(sh.Dp()), D = double(sh.D), threads = double(num_threads());
  const double nblk = double((sh.Tk + BC - 1) / BC);
  double work = 0;
  if (backward_pass)
    work = (2 + threads) * (double(z.nq) / D) * Dp;
  else if (sh.Tq > 0 && sh.Tq <= DIRECT_MAX_TQ)
    work = B * (4 * threads + 1) * double(sh.Hq) * double(sh.Tq) * (Dp + 2);
  else if (sh.Tq > 0)
    work = B * double(sh.Hkv) * (nblk * BC * D + double(sh.Tk) * Dp);
  if (work > double(kMaxWorkspaceFloats))
    fail(a.env(), a.op,
         "scratch of " + num_str(work * 4) + " bytes exceeds the limit of " +
             std::to_string(kMaxWorkspaceFloats * 4) + " " + z.dims);
  sh.kvLen = nullptr;
  if (!a.is_null(12)) {
    sh.kvLen = a.i32(12, sh.B);
    for (int64_t b = 0; b < sh.B; b++)
      a.require(sh.kvLen[b] >= 0 && sh.kvLen[b] <= sh.Tk,
                "kvLen[" + std::to_string(b) + "] = " + std::to_string(sh.kvLen[b]) + " is outside [0, Tk] " + z.dims);
  }
  return z;
}

Napi::Value js_attention_forward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionForward", 15);
  const Sizes z = parse_shape(a, false);
  const Shape& sh = z.sh;
  FwdIo io{a.f32(9, z.nq), a.f32(10, z.nk), a.f32(11, z.nk), a.f32(13, z.nq), a.f32(14, z.nlse)};
  if (sh.Tq == 0) return info.Env().Undefined();
  if (sh.Tq <= DIRECT_MAX_TQ)
    forward_direct(sh, io, sh.B * sh.Tk * sh.Hkv * sh.D * 8 >= kStreamBytes);
  else
    forward_tiled(sh, io);
  return info.Env().Undefined();
}

// Element r of a JS array argument as a typed array of type `type` with at least `need` elements.
const void* row_array(const Args& a, size_t i, const Napi::Array& arr, int64_t r, int64_t need, const char* name,
                      napi_typedarray_type type) {
  const Napi::Value e = arr.Get(static_cast<uint32_t>(r));
  const char* want = type == napi_float32_array ? "a Float32Array" : "a Uint16Array";
  if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != type)
    fail(a.env(), a.op, std::string(name) + "[" + std::to_string(r) + "] (argument " + std::to_string(i) + ") must be " +
                            want + " like " + name + "[0]");
  const auto t = e.As<Napi::TypedArray>();
  if (static_cast<int64_t>(t.ElementLength()) < need)
    fail(a.env(), a.op, std::string(name) + "[" + std::to_string(r) + "] has " + std::to_string(t.ElementLength()) +
                            " elements, needs " + std::to_string(need));
  return static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
}

template <typename T>
void decode_rows(int64_t R, int64_t Hq, int64_t Hkv, int64_t D, float scale, const float* q,
                 const std::vector<const void*>& kp, const std::vector<const void*>& vp, const int32_t* len,
                 float* out) {
  const int64_t qrow = Hq * D, kvrow = Hkv * D;
  std::vector<float> lse(R * Hq);
  int64_t bytes = 0;  // K and V the call reads
  for (int64_t r = 0; r < R; r++) bytes += len[r] * kvrow * 2 * int64_t(sizeof(T));
  parallel_tasks(R, [&](int64_t r) {
    // The next row's first keys and values into L2 while this row is read (each row's cache is its own
    // allocation, so the hardware prefetcher starts over at every row).
    if (r + 1 < R && bytes >= kStreamBytes)
      for (int64_t j = 0; j < std::min<int64_t>(CH, len[r + 1]); j++) {
        prefetch_row(static_cast<const T*>(kp[r + 1]) + j * kvrow, kvrow);
        prefetch_row(static_cast<const T*>(vp[r + 1]) + j * kvrow, kvrow);
      }
    const Shape sh{1, 1, len[r], Hq, Hkv, D, len[r] - 1, true, scale, nullptr};
    const FwdIoT<T> io{q + r * qrow, static_cast<const T*>(kp[r]), static_cast<const T*>(vp[r]), out + r * qrow,
                       lse.data() + r * Hq};
    forward_direct(sh, io, bytes >= kStreamBytes);
  });
}

// attentionDecodeRows(R, Hq, Hkv, D, scale, q, keys, values, lengths, out): R sequences with one query row
// each, at position lengths[r] - 1, over their own caches keys[r], values[r] ([≥ lengths[r], Hkv, D]), all
// Float32Array or all Uint16Array (bf16 bits, a bf16 KV cache: widened exactly, so a row gets the bits of
// its f32-widened cache). Row r gets exactly the bits of attentionForward(B = 1, Tq = 1, Tk = lengths[r],
// qOffset = lengths[r] - 1, causal) on f32 keys and values: the same forward_direct, whose key split
// depends only on Tk and the thread count (not on whether it runs inside a pool task), so rows can run on
// different threads.
Napi::Value js_attention_decode_rows(const Napi::CallbackInfo& info) {
  Args a(info, "attentionDecodeRows", 10);
  const int64_t R = dim_arg(a, 0, "R"), Hq = dim_arg(a, 1, "Hq", 1), Hkv = dim_arg(a, 2, "Hkv", 1);
  const int64_t D = dim_arg(a, 3, "D", 1);
  const float scale = static_cast<float>(finite_arg(a, 4, "scale"));
  a.require(Hq % Hkv == 0, "Hq (" + std::to_string(Hq) + ") must be a multiple of Hkv (" + std::to_string(Hkv) + ")");
  const int64_t qrow = checked_product(a, {Hq, D}, "a query row"), kvrow = checked_product(a, {Hkv, D}, "a key row");
  const int64_t nq = checked_product(a, {R, qrow}, "q");
  a.require(info[6].IsArray() && info[7].IsArray(),
            "keys and values (arguments 6, 7) must be arrays of Float32Array or of Uint16Array");
  const auto ks = info[6].As<Napi::Array>(), vs = info[7].As<Napi::Array>();
  a.require(ks.Length() >= R && vs.Length() >= R,
            "keys and values need R = " + std::to_string(R) + " arrays, got " + std::to_string(ks.Length()) + " and " +
                std::to_string(vs.Length()));
  const float* q = a.f32(5, nq);
  const int32_t* len = a.i32(8, R);
  float* out = a.f32(9, nq);
  if (R == 0) return info.Env().Undefined();
  const Napi::Value k0 = ks.Get(0u);
  const bool bf16 = k0.IsTypedArray() && k0.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  const napi_typedarray_type type = bf16 ? napi_uint16_array : napi_float32_array;
  std::vector<const void*> kp(R), vp(R);
  for (int64_t r = 0; r < R; r++) {
    a.require(len[r] >= 1, "lengths[" + std::to_string(r) + "] = " + std::to_string(len[r]) + " must be >= 1");
    const int64_t need = checked_product(a, {len[r], kvrow}, "a cache");
    kp[r] = row_array(a, 6, ks, r, need, "keys", type);
    vp[r] = row_array(a, 7, vs, r, need, "values", type);
  }
  if (bf16)
    decode_rows<uint16_t>(R, Hq, Hkv, D, scale, q, kp, vp, len, out);
  else
    decode_rows<float>(R, Hq, Hkv, D, scale, q, kp, vp, len, out);
  return info.Env().Undefined();
}

Napi::Value js_attention_backward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionBackward", 19);
  const Sizes z = parse_shape(a, true);
  BwdIo io{a.f32(9, z.nq),  a.f32(10, z.nk), a.f32(11, z.nk), a.f32(13, z.nq), a.f32(14, z.nlse),
           a.f32(15, z.nq), a.f32(16, z.nq), a.f32(17, z.nk), a.f32(18, z.nk)};
  backward(z.sh, io);
  return info.Env().Undefined();
}

}  // namespace

REFRAG_EXPORT("attentionForward", js_attention_forward);
REFRAG_EXPORT("attentionBackward", js_attention_backward);
REFRAG_EXPORT("attentionDecodeRows", js_attention_decode_rows);

}  // namespace refrag
