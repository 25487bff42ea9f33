// Shared pieces of the pointwise/norm kernels: AVX2 math (exp, sigmoid, normal CDF), horizontal sums,
// and argument helpers that name the op and the argument in errors.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "checks.h"
#include "common.h"
#include "pool.h"

namespace refrag {
namespace pw {

#define PW_AVX2 __attribute__((target("avx2,fma")))

// Elementwise work below this many items stays on the calling thread (a pool hand-off costs ~5-20 µs).
constexpr int64_t kGrain = 32768;

// ---------------------------------------------------------------- vector math (8 floats)

PW_AVX2 static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

PW_AVX2 static inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

PW_AVX2 static inline double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// exp(x), Cephes polynomial (about 1-2 ulp). Overflows to +inf, underflows to 0 (through denormals),
// NaN stays NaN. 2^n is applied as two factors so every n in [-150, 128] has a valid exponent.
PW_AVX2 static inline __m256 exp8(__m256 x) {
  const __m256 xc = _mm256_max_ps(_mm256_set1_ps(-104.0f), _mm256_min_ps(_mm256_set1_ps(89.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  const __m256 res = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return _mm256_blendv_ps(res, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// 1 / (1 + exp(-x)).
PW_AVX2 static inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// The normal CDF Phi(x) = erfc(-x/sqrt2)/2. erfc(z), z >= 0, by the Numerical Recipes Chebyshev fit
// (relative error < 1.2e-7 everywhere), so Phi keeps its relative accuracy in the far negative tail too.
PW_AVX2 static inline __m256 phi8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 z = _mm256_mul_ps(ax, _mm256_set1_ps(0.70710678118654752f));
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, one));
  __m256 p = _mm256_set1_ps(0.17087277f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
  // -z² + p(t) = -(x/2)·x + p(t) with one rounding (the far tail's accuracy depends on this argument)
  const __m256 arg = _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), ax), ax, p);
  const __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), t), exp8(arg));
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_blendv_ps(_mm256_sub_ps(one, half_erfc), half_erfc, neg);
}

// Scalar versions for tails: one lane of the vector code, so tails match the body bit for bit.
PW_AVX2 static inline float lane0(__m256 v) { return _mm256_cvtss_f32(v); }
PW_AVX2 static inline float exp1(float x) { return lane0(exp8(_mm256_set1_ps(x))); }

// A tail of n < 8 floats as a masked vector load/store.
PW_AVX2 static inline __m256i tail_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}
PW_AVX2 static inline __m256 load_tail(const float* p, int64_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
PW_AVX2 static inline void store_tail(float* p, int64_t n, __m256 v) { _mm256_maskstore_ps(p, tail_mask(n), v); }
// Up to 8 floats: a full vector, or a masked tail (zeros beyond n).
PW_AVX2 static inline __m256 ld(const float* p, int64_t n) { return n >= 8 ? _mm256_loadu_ps(p) : load_tail(p, n); }
PW_AVX2 static inline void st(float* p, int64_t n, __m256 v) {
  if (n >= 8)
    _mm256_storeu_ps(p, v);
  else
    store_tail(p, n, v);
}

// ---------------------------------------------------------------- splitting work over the pool

// Rows per part so that each part holds at least ~kGrain elements.
inline int64_t row_grain(int64_t dim) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, dim)); }

// How many parts parallel work on n items would use (the rule of parallel_for); 1 keeps it on this thread.
inline int64_t num_parts(int64_t n, int64_t grain) {
  return std::min<int64_t>(num_threads(), std::max<int64_t>(1, n / grain));
}

// Run fn(part, begin, end) over `parts` contiguous ranges of [0, n).
template <typename F>
void for_parts(int64_t n, int64_t parts, F fn) {
  int64_t step = (n + parts - 1) / std::max<int64_t>(1, parts);
  parallel_tasks(parts, [&](int64_t t) {
    int64_t b = t * step, e = std::min(n, b + step);
    if (b < e) fn(t, b, e);
  });
}

// ---------------------------------------------------------------- argument helpers

// A non-negative integer count (rows, dim, …), named in the error.
inline int64_t count_arg(const Args& a, size_t i, const char* name) { return dim_arg(a, i, name); }

inline int64_t checked_mul(const Args& a, int64_t x, int64_t y) {
  return checked_product(a, {x, y}, std::to_string(x) + " x " + std::to_string(y) + " elements");
}

// Element count of a typed array argument (type already checked by Args::f32 / i32).
inline int64_t length_of(const Args& a, size_t i) {
  return static_cast<int64_t>(a.info[i].As<Napi::TypedArray>().ElementLength());
}

// A Float32Array whose length must equal n (elementwise ops).
inline float* f32_exact(const Args& a, size_t i, const char* name, int64_t n, const char* ref_name) {
  float* p = a.f32(i, 0);
  int64_t len = length_of(a, i);
  if (len != n)
    fail(a.env(), a.op, std::string("length mismatch: ") + ref_name + " has " + std::to_string(n) +
                            " elements, " + name + " has " + std::to_string(len));
  return p;
}

}  // namespace pw
}  // namespace refrag
