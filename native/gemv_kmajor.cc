// K-major multi-row GEMV (the decode step's weight products, "axpy" form): Y[r, n] = alpha · Σ_k X[r, k] ·
// Wt[k, n] + beta · Y[r, n], with the Linear weight stored transposed, Wt K×N. Every output is ONE
// sequential FMA chain over k,
//   s = 0;  s = fma(X[r, k], Wt[k, n], s) for k = 0, 1, …, K-1;  y = finish(s)
// (finish as gemv_finish: alpha · s, or fma(alpha, s, beta · y) when beta != 0). There is no horizontal
// reduction, so an output's arithmetic does not depend on R, on the row's position, on the tile shape, on
// the thread count (threads split the outputs, never K) or on the instruction set: batch invariance by
// construction, and AVX2 and AVX-512 give the same bits.
// Vectorised across n: broadcast X[r, k] and FMA it into accumulators that hold 16 (AVX-512) or 8 (AVX2)
// consecutive outputs. A tile of RB rows × NB vectors loads each Wt vector once per k and uses it RB times;
// the last vector of a row of Wt is masked when N is not a multiple of the width. The outputs go in blocks
// of NB vectors; each block's K × 16·NB panel of Wt is read by every row block (the first one streams it
// from memory), under AVX-512 in K blocks of 24 KiB that stay in L1 while every row block applies them
// (the row blocks' running sums wait in a scratch between K blocks, stored and reloaded as f32: the same
// chains), and while the row blocks work on one panel they prefetch the next into L2, a slice each (a
// panel's rows are N apart, a page apart for the LM head, where the hardware prefetcher cannot follow). One row under AVX-512 (the single-stream decode step) reads Wt in address order instead
// (section "one row"): the same chains, at close to the memory's read bandwidth.
// Shapes: X R×K, Wt K×N (f32 or bf16 bits), Y R×N, all row-major and contiguous.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "common.h"
#include "gemm.h"
#include "pool.h"
#include "weights_simd.h"

// GCC 12's avx512fintrin.h builds results from self-initialised undefined vectors, which
// -W(maybe-)uninitialized reports in every caller (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define REFRAG_AVX2 __attribute__((target("avx2,fma")))
#define REFRAG_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

namespace refrag {
namespace {

// One tile's operands: RB rows from x, outputs [n0, n0 + 16·NB) (or 8·NB) from wt and y.
struct Tile {
  int64_t K, N;    // X's row length; Y's row length
  int64_t ldw;     // the row stride of this block's Wt (N, or the panel's width in the panel layout)
  const float* x;  // X[r0, 0]
  float* y;        // Y[r0, n0]
  float alpha, beta;
  const void* next;  // the next output block's panel of Wt, to prefetch into L2, or null
  int64_t ldn;       // next's row stride
  int pass, mask;    // this row block prefetches the next panel's rows k with (k & mask) == pass
  int64_t k0, k1;    // the rows of Wt this call applies, [k0, k1) (AVX-512; AVX2 takes [0, K))
  float* part;       // the running sums before k0 and after k1 (RB × 16·NB floats) when not [0, K)
};

// ---- AVX-512 ----------------------------------------------------------------------------------------

REFRAG_AVX512 inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
REFRAG_AVX512 inline __m512 load16(const uint16_t* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// y = alpha · s, or fma(alpha, s, beta · y) when beta != 0, on the lanes in m (gemv_finish's rounding).
REFRAG_AVX512 inline void finish16(float* y, __m512 s, float alpha, float beta, __mmask16 m) {
  const __m512 a = _mm512_set1_ps(alpha);
  const __m512 b = _mm512_set1_ps(beta);
  const __m512 v =
      beta == 0.0f ? _mm512_mul_ps(a, s) : _mm512_fmadd_ps(a, s, _mm512_mul_ps(b, _mm512_maskz_loadu_ps(m, y)));
  _mm512_mask_storeu_ps(y, m, v);
}

// Y[r0 + r, n0 + 16j + i] for r < RB, j < NB (lanes of the last vector outside `last` untouched).
template <typename T, int RB, int NB>
REFRAG_AVX512 void tile_avx512(const Tile& t, const T* wt, __mmask16 last) {
  const int64_t K = t.K;
  const T* next = static_cast<const T*>(t.next);
  const float* x = t.x;
  __m512 acc[RB][NB];
  #pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
    #pragma GCC unroll 32
    for (int j = 0; j < NB; j++)
      acc[r][j] = t.k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(t.part + (r * NB + j) * 16);
  for (int64_t k = t.k0; k < t.k1; k++) {
    const T* w = wt + k * t.ldw;
    if (next != nullptr && (k & t.mask) == t.pass)
#pragma GCC unroll 32
      for (int j = 0; j < NB; j++)
        _mm_prefetch(reinterpret_cast<const char*>(next + k * t.ldn + 16 * j), _MM_HINT_T1);
    __m512 wv[NB];
    #pragma GCC unroll 32
    for (int j = 0; j < NB; j++) wv[j] = load16(w + 16 * j, j == NB - 1 ? last : __mmask16(0xFFFF));
    #pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const __m512 xv = _mm512_set1_ps(x[r * K + k]);
      #pragma GCC unroll 32
      for (int j = 0; j < NB; j++) acc[r][j] = _mm512_fmadd_ps(xv, wv[j], acc[r][j]);
    }
  }
  if (t.k1 < K) {  // more rows of Wt to come: the sums wait in part (stored and reloaded as f32: exact)
    #pragma GCC unroll 8
    for (int r = 0; r < RB; r++)
      #pragma GCC unroll 32
      for (int j = 0; j < NB; j++) _mm512_storeu_ps(t.part + (r * NB + j) * 16, acc[r][j]);
    return;
  }
  #pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
    #pragma GCC unroll 32
    for (int j = 0; j < NB; j++)
      finish16(t.y + r * t.N + 16 * j, acc[r][j], t.alpha, t.beta, j == NB - 1 ? last : __mmask16(0xFFFF));
}

// ---- one row (R = 1), AVX-512: Wt read in address order ---------------------------------------------

// One row uses each weight once, so it runs at the speed Wt streams from memory, and the order it is read
// in decides that speed: the K × 128 column panels of the tiles (K segments N apart) stream from DRAM at
// ~11 GB/s on this Zen 4, Wt in address order at ~27 (bench:decode-memory). Two shapes, both with the
// tiles' per-output chain, s = fma(x[k], Wt[k, n], s) for k = 0, 1, ..., K-1 from s = 0:
// - at most kRowRegs vectors of outputs: all of them in registers, each k reads one whole row of Wt;
// - wider: blocks of kRowBlock rows of Wt, each applied to every output (128 at a time), the running sums
//   kept in a scratch row between blocks (stored and reloaded as f32: exact); each row of a block
//   prefetches the row two blocks ahead into L2.
constexpr int kRowRegs = 24;   // 24 accumulators + the loaded vectors fit the 32 zmm registers
constexpr int kRowBlock = 8;   // rows of Wt per block

using StripFn = void (*)(const Tile&, const void*, __mmask16);
template <typename T, int NB>
void strip_avx512(const Tile& t, const void* wt, __mmask16 last) {
  tile_avx512<T, 1, NB>(t, static_cast<const T*>(wt), last);
}
template <typename T, int... I>
constexpr std::array<StripFn, sizeof...(I)> strip_table(std::integer_sequence<int, I...>) {
  return {&strip_avx512<T, I + 1>...};
}

// Rows [0, kb) of a block (w = Wt[k0, n], x = X[k0]) into the running sums s[0, 16·NB): `rows` rows of Wt
// exist from w on (for the prefetch).
template <typename T, int NB>
REFRAG_AVX512 void row_block(const T* w, int64_t N, int kb, int64_t rows, const float* x, float* s, bool first,
                             __mmask16 last) {
  constexpr int64_t ahead = 2 * kRowBlock;
  __m512 acc[NB];
  #pragma GCC unroll 8
  for (int j = 0; j < NB; j++)
    acc[j] = first ? _mm512_setzero_ps()
                   : _mm512_maskz_loadu_ps(j == NB - 1 ? last : __mmask16(0xFFFF), s + 16 * j);
  for (int i = 0; i < kb; i++) {
    const T* wr = w + i * N;
    if (i + ahead < rows)
      for (size_t b = 0; b < NB * 16 * sizeof(T); b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(wr + ahead * N) + b, _MM_HINT_T1);
    const __m512 xv = _mm512_set1_ps(x[i]);
    #pragma GCC unroll 8
    for (int j = 0; j < NB; j++)
      acc[j] = _mm512_fmadd_ps(xv, load16(wr + 16 * j, j == NB - 1 ? last : __mmask16(0xFFFF)), acc[j]);
  }
  #pragma GCC unroll 8
  for (int j = 0; j < NB; j++) _mm512_mask_storeu_ps(s + 16 * j, j == NB - 1 ? last : __mmask16(0xFFFF), acc[j]);
}

using RowBlockFn = void (*)(const void*, int64_t, int, int64_t, const float*, float*, bool, __mmask16);
template <typename T, int NB>
void row_block_erased(const void* w, int64_t N, int kb, int64_t rows, const float* x, float* s, bool first,
                      __mmask16 last) {
  row_block<T, NB>(static_cast<const T*>(w), N, kb, rows, x, s, first, last);
}
template <typename T, int... I>
constexpr std::array<RowBlockFn, sizeof...(I)> row_block_table(std::integer_sequence<int, I...>) {
  return {&row_block_erased<T, I + 1>...};
}

inline __mmask16 lanes(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // n in 1..16

// Outputs [n0, n1) of the one row x.
template <typename T>
REFRAG_AVX512 void row_range(int64_t n0, int64_t n1, int64_t K, float alpha, const float* x, const T* Wt,
                             float beta, float* y, int64_t N) {
  const int64_t n = n1 - n0;
  if (n <= 16 * kRowRegs) {
    static constexpr auto strips = strip_table<T>(std::make_integer_sequence<int, kRowRegs>());
    const int64_t nb = (n + 15) / 16;
    strips[nb - 1](Tile{K, N, N, x, y + n0, alpha, beta, nullptr, 0, 0, 0, 0, K, nullptr}, Wt + n0, lanes(n - 16 * (nb - 1)));
    return;
  }
  static constexpr auto blocks = row_block_table<T>(std::make_integer_sequence<int, 8>());  // 8 = 128 / 16
  thread_local std::vector<float> scratch;  // each thread's own: threads split the outputs
  if (scratch.size() < size_t(n)) scratch.resize(n);
  float* s = scratch.data();
  for (int64_t k0 = 0; k0 < K; k0 += kRowBlock) {
    const int kb = static_cast<int>(std::min<int64_t>(kRowBlock, K - k0));
    for (int64_t c = 0; c < n; c += 128) {
      const int64_t nn = std::min<int64_t>(128, n - c), nb = (nn + 15) / 16;
      blocks[nb - 1](Wt + k0 * N + n0 + c, N, kb, K - k0, x + k0, s + c, k0 == 0, lanes(nn - 16 * (nb - 1)));
    }
  }
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 m = lanes(std::min<int64_t>(16, n - c));
    finish16(y + n0 + c, _mm512_maskz_loadu_ps(m, s + c), alpha, beta, m);
  }
}

// ---- AVX2 -------------------------------------------------------------------------------------------

template <typename T, int RB, int NB>
REFRAG_AVX2 void tile_avx2(const Tile& t, const T* wt, int last) {
  const int64_t K = t.K;
  const float* x = t.x;
  __m256 acc[RB][NB];
  #pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
    #pragma GCC unroll 8
    for (int j = 0; j < NB; j++) acc[r][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const T* w = wt + k * t.ldw;
    __m256 wv[NB];
    #pragma GCC unroll 8
    for (int j = 0; j < NB; j++)
      wv[j] = j == NB - 1 && last < 8 ? load8_part(w + 8 * j, last) : load8(w + 8 * j);
    #pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const __m256 xv = _mm256_set1_ps(x[r * K + k]);
      #pragma GCC unroll 8
      for (int j = 0; j < NB; j++) acc[r][j] = _mm256_fmadd_ps(xv, wv[j], acc[r][j]);
    }
  }
  const __m256 a = _mm256_set1_ps(t.alpha), b = _mm256_set1_ps(t.beta);
  #pragma GCC unroll 8
  for (int r = 0; r < RB; r++)
    #pragma GCC unroll 8
    for (int j = 0; j < NB; j++) {
      float* y = t.y + r * t.N + 8 * j;
      const int n = j == NB - 1 ? last : 8;
      float old[8] = {}, out[8];
      std::memcpy(old, y, n * sizeof(float));
      const __m256 v = t.beta == 0.0f
                           ? _mm256_mul_ps(a, acc[r][j])
                           : _mm256_fmadd_ps(a, acc[r][j], _mm256_mul_ps(b, _mm256_loadu_ps(old)));
      _mm256_storeu_ps(out, v);
      std::memcpy(y, out, n * sizeof(float));
    }
}

// ---- driver -----------------------------------------------------------------------------------------

// A tile of RB rows × nb vectors (nb ≤ 8), dispatched to its compiled shape.
template <typename T, int RB>
void tile_rows(bool wide, int nb, const Tile& t, const T* wt, int last) {
  if (wide) {
    const __mmask16 m = static_cast<__mmask16>((1u << last) - 1u);
    switch (nb) {
      case 1: return tile_avx512<T, RB, 1>(t, wt, m);
      case 2: return tile_avx512<T, RB, 2>(t, wt, m);
      case 3: return tile_avx512<T, RB, 3>(t, wt, m);
      case 4: return tile_avx512<T, RB, 4>(t, wt, m);
      case 5: return tile_avx512<T, RB, 5>(t, wt, m);
      case 6: return tile_avx512<T, RB, 6>(t, wt, m);
      case 7: return tile_avx512<T, RB, 7>(t, wt, m);
      default: return tile_avx512<T, RB, 8>(t, wt, m);
    }
  }
  switch (nb) {
    case 1: return tile_avx2<T, RB, 1>(t, wt, last);
    case 2: return tile_avx2<T, RB, 2>(t, wt, last);
    case 3: return tile_avx2<T, RB, 3>(t, wt, last);
    case 4: return tile_avx2<T, RB, 4>(t, wt, last);
    case 5: return tile_avx2<T, RB, 5>(t, wt, last);
    case 6: return tile_avx2<T, RB, 6>(t, wt, last);
    case 7: return tile_avx2<T, RB, 7>(t, wt, last);
    default: return tile_avx2<T, RB, 8>(t, wt, last);
  }
}

// The tile shape: rows × vectors per tile. One row needs 8 independent chains to hide the FMA latency;
// several rows share each loaded Wt vector: 4 × 6 = 24 accumulators + 6 loaded vectors + a broadcast of
// the 32 zmm registers (measured against 4 × 4, 6 × 4, 8 × 3 at R = 32: the LM head gains most, the
// others are at ~100 GFLOP/s either way); AVX2 has 16 ymm registers: 4 × 3 = 12 accumulators + 3 + 1
// (at R = 32, forced AVX2 on an AVX-512 Xeon: ~85 GFLOP/s against 4 × 2's ~42, 6 × 2's ~48, 3 × 4's ~58). (One row under AVX-512 uses
// its own shapes, row_range; its 1 × 8 here is only the unit threads split the outputs in.)
struct Shape {
  int rows, vecs, width;  // width: outputs per vector
};
Shape tile_shape(bool wide, int64_t R) {
  if (R == 1) return {1, 8, wide ? 16 : 8};
  return wide ? Shape{4, 6, 16} : Shape{4, 3, 8};
}

// Where output block n's weights start and their row stride: Wt[0, n] and N in the K-major layout; in the
// panel layout (panels = true) column n sits in the K × w panel p0 = n - n mod kPanel, w = min(kPanel,
// N - p0), stored row-major from Wt[p0 · K], so a block reads one contiguous panel instead of K segments
// N apart (the LM head's 32 KiB stride maps a panel's rows onto a few L2 sets).
template <typename T>
std::pair<const T*, int64_t> block_at(const T* Wt, bool panels, int64_t n, int64_t N, int64_t K) {
  if (!panels) return {Wt + n, N};
  const int64_t p0 = n - n % kPanel;
  return {Wt + p0 * K + (n - p0), std::min<int64_t>(kPanel, N - p0)};
}

// Outputs [n0, n1) of every row: blocks of s.vecs vectors (the last one shorter, its last vector masked),
// each block applied to the rows in runs of s.rows.
// Rows of Wt per K block when several row blocks share an output block (AVX-512): the block's slice of Wt,
// kKBlockBytes, stays in L1 while every row block applies it, instead of each row block streaming the
// whole K × 16·NB panel from L2 (which held R = 32 products to ~100 GFLOP/s).
constexpr int64_t kKBlockBytes = 24 << 10;

// Outputs [n0, n1) of every row: blocks of s.vecs vectors (the last one shorter, its last vector masked),
// each block applied to the rows in runs of s.rows; under AVX-512 with several runs, in K blocks (the runs'
// running sums kept in a scratch between blocks).
template <typename T>
void kmajor_range(bool wide, Shape s, bool panels, int64_t n0, int64_t n1, int64_t R, int64_t K, float alpha,
                  const float* X, const T* Wt, float beta, float* Y, int64_t N) {
  const int64_t block = int64_t(s.vecs) * s.width;
  const int64_t nrb = (R + s.rows - 1) / s.rows;
  const int passes = nrb >= 8 ? 8 : nrb >= 4 ? 4 : nrb >= 2 ? 2 : 1;  // a power of two, ≤ nrb
  const int64_t kc = wide && nrb > 1 ? std::max<int64_t>(1, kKBlockBytes / (block * int64_t(sizeof(T)))) : K;
  thread_local std::vector<float> scratch;
  if (kc < K && scratch.size() < static_cast<size_t>(nrb * s.rows * block)) scratch.resize(nrb * s.rows * block);
  for (int64_t n = n0; n < n1; n += block) {
    const int64_t nn = std::min(block, n1 - n);
    const int nb = static_cast<int>((nn + s.width - 1) / s.width);
    const int last = static_cast<int>(nn - int64_t(nb - 1) * s.width);  // valid outputs in the last vector
    const auto [w, ldw] = block_at(Wt, panels, n, N, K);
    const bool pf = n + block < n1;
    const auto [next, ldn] = pf ? block_at(Wt, panels, n + block, N, K) : std::pair<const T*, int64_t>{nullptr, 0};
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t k1 = std::min(K, k0 + kc);
      for (int64_t r0 = 0; r0 < R; r0 += s.rows) {
        const int rb = static_cast<int>(std::min<int64_t>(s.rows, R - r0));
        float* part = kc < K ? scratch.data() + r0 * block : nullptr;
        const Tile t{K,    N,    ldw, X + r0 * K, Y + r0 * N + n, alpha, beta, next, ldn,
                     static_cast<int>((r0 / s.rows) & (passes - 1)), passes - 1, k0, k1, part};
        switch (rb) {
          case 1: tile_rows<T, 1>(wide, nb, t, w, last); break;
          case 2: tile_rows<T, 2>(wide, nb, t, w, last); break;
          case 3: tile_rows<T, 3>(wide, nb, t, w, last); break;
          default: tile_rows<T, 4>(wide, nb, t, w, last); break;
        }
      }
    }
  }
}

template <typename T>
void gemv_kmajor_any(bool panels, int64_t R, int64_t N, int64_t K, float alpha, const float* X, const T* Wt,
                     float beta, float* Y, int threads) {
  if (R <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < R * N; i++) Y[i] = beta == 0.0f ? 0.0f : beta * Y[i];
    return;
  }
  const bool wide = isa() == Isa::avx512;
  // The panel layout takes the R > 1 tiles at every R (their blocks, 96 or 24 outputs, divide kPanel).
  const Shape s = tile_shape(wide, panels ? 2 : R);
  if (threads <= 0) threads = num_threads();
  // Threads split the outputs in whole blocks (each output's chain runs on one thread, so the bits do not
  // depend on the thread count). Below ~64K multiply-adds a pool wake-up costs more than the work.
  const int64_t block = int64_t(s.vecs) * s.width;
  const int64_t units = (N + block - 1) / block;
  const double work = static_cast<double>(R) * static_cast<double>(N) * static_cast<double>(K);
  const int64_t parts = work < 65536.0 ? 1 : std::min<int64_t>(threads, units);
  auto run = [&](int64_t p) {
    const int64_t b = units * p / parts * block, e = std::min(N, units * (p + 1) / parts * block);
    if (b >= e) return;
    if (wide && R == 1 && !panels)
      row_range(b, e, K, alpha, X, Wt, beta, Y, N);
    else
      kmajor_range(wide, s, panels, b, e, R, K, alpha, X, Wt, beta, Y, N);
  };
  if (parts == 1)
    run(0);
  else
    parallel_tasks(parts, run);
}

}  // namespace

void sgemv_kmajor(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const float* Wt, float beta,
                  float* Y, int threads) {
  gemv_kmajor_any(false, R, N, K, alpha, X, Wt, beta, Y, threads);
}

void sgemv_kmajor_bf16(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const uint16_t* Wt,
                       float beta, float* Y, int threads) {
  gemv_kmajor_any(false, R, N, K, alpha, X, Wt, beta, Y, threads);
}

void sgemv_panels(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const float* Wp, float beta,
                  float* Y, int threads) {
  gemv_kmajor_any(true, R, N, K, alpha, X, Wp, beta, Y, threads);
}

void sgemv_panels_bf16(int64_t R, int64_t N, int64_t K, float alpha, const float* X, const uint16_t* Wp,
                       float beta, float* Y, int threads) {
  gemv_kmajor_any(true, R, N, K, alpha, X, Wp, beta, Y, threads);
}

}  // namespace refrag
