// Elementwise kernels (SiLU, GELU, SwiGLU, add, mul, axpy, scale), reductions (sum of squares, first
// non-finite, argmax), embedding gather / scatter-add and the AdamW step. Each loops 8 floats at a time with a
// masked tail; arrays larger than kGrain are split over the pool, small ones stay on this thread.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pointwise_simd.h"
#include "pool.h"

namespace refrag {
namespace pw {
namespace {

// Run fn(begin, end) over [0, n), in parallel when n is large.
template <typename F>
void elementwise(int64_t n, F fn) {
  for_parts(n, num_parts(n, kGrain), [&](int64_t, int64_t b, int64_t e) { fn(b, e); });
}

// ---------------------------------------------------------------- activations

PW_AVX2 void silu_fwd(int64_t b, int64_t e, const float* x, float* y) {
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    __m256 v = ld(x + i, k);
    st(y + i, k, _mm256_mul_ps(v, sigmoid8(v)));
  }
}

// d silu = s·(1 + x·(1 - s))
PW_AVX2 static inline __m256 dsilu8(__m256 v) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 s = sigmoid8(v);
  return _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one));
}

PW_AVX2 void silu_bwd(int64_t b, int64_t e, const float* x, const float* dy, float* dx) {
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    st(dx + i, k, _mm256_mul_ps(ld(dy + i, k), dsilu8(ld(x + i, k))));
  }
}

PW_AVX2 void gelu_fwd(int64_t b, int64_t e, const float* x, float* y) {
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    __m256 v = ld(x + i, k);
    st(y + i, k, _mm256_mul_ps(v, phi8(v)));
  }
}

// d gelu = Phi(x) + x·exp(-x²/2)/sqrt(2π)
PW_AVX2 void gelu_bwd(int64_t b, int64_t e, const float* x, const float* dy, float* dx) {
  const __m256 c = _mm256_set1_ps(0.39894228040143268f);
  const __m256 mhalf = _mm256_set1_ps(-0.5f);
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    __m256 v = ld(x + i, k);
    __m256 pdf = _mm256_mul_ps(c, exp8(_mm256_mul_ps(mhalf, _mm256_mul_ps(v, v))));
    st(dx + i, k, _mm256_mul_ps(ld(dy + i, k), _mm256_fmadd_ps(v, pdf, phi8(v))));
  }
}

PW_AVX2 void swiglu_fwd(int64_t b, int64_t e, const float* gate, const float* up, float* y) {
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    __m256 g = ld(gate + i, k);
    st(y + i, k, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), ld(up + i, k)));
  }
}

// dgate = dy·up·dsilu(gate), dup = dy·silu(gate)
PW_AVX2 void swiglu_bwd(int64_t b, int64_t e, const float* gate, const float* up, const float* dy, float* dgate,
                        float* dup) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    __m256 g = ld(gate + i, k), u = ld(up + i, k), d = ld(dy + i, k);
    __m256 s = sigmoid8(g);
    __m256 ds = _mm256_mul_ps(s, _mm256_fmadd_ps(g, _mm256_sub_ps(one, s), one));
    st(dgate + i, k, _mm256_mul_ps(_mm256_mul_ps(d, u), ds));
    st(dup + i, k, _mm256_mul_ps(d, _mm256_mul_ps(g, s)));
  }
}

// JS: siluForward(x, y), geluForward(x, y)
template <void (*K)(int64_t, int64_t, const float*, float*)>
Napi::Value js_unary_fwd(const Napi::CallbackInfo& info, const char* op) {
  Args a(info, op, 2);
  const float* x = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  float* y = f32_exact(a, 1, "y", n, "x");
  elementwise(n, [&](int64_t b, int64_t e) { K(b, e, x, y); });
  return info.Env().Undefined();
}
// JS: siluBackward(x, dy, dx), geluBackward(x, dy, dx)
template <void (*K)(int64_t, int64_t, const float*, const float*, float*)>
Napi::Value js_unary_bwd(const Napi::CallbackInfo& info, const char* op) {
  Args a(info, op, 3);
  const float* x = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  const float* dy = f32_exact(a, 1, "dy", n, "x");
  float* dx = f32_exact(a, 2, "dx", n, "x");
  elementwise(n, [&](int64_t b, int64_t e) { K(b, e, x, dy, dx); });
  return info.Env().Undefined();
}
Napi::Value js_silu_forward(const Napi::CallbackInfo& info) { return js_unary_fwd<silu_fwd>(info, "siluForward"); }
Napi::Value js_silu_backward(const Napi::CallbackInfo& info) { return js_unary_bwd<silu_bwd>(info, "siluBackward"); }
Napi::Value js_gelu_forward(const Napi::CallbackInfo& info) { return js_unary_fwd<gelu_fwd>(info, "geluForward"); }
Napi::Value js_gelu_backward(const Napi::CallbackInfo& info) { return js_unary_bwd<gelu_bwd>(info, "geluBackward"); }

// JS: swigluForward(gate, up, y)
Napi::Value js_swiglu_forward(const Napi::CallbackInfo& info) {
  Args a(info, "swigluForward", 3);
  const float* gate = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  const float* up = f32_exact(a, 1, "up", n, "gate");
  float* y = f32_exact(a, 2, "y", n, "gate");
  elementwise(n, [&](int64_t b, int64_t e) { swiglu_fwd(b, e, gate, up, y); });
  return info.Env().Undefined();
}

// JS: swigluBackward(gate, up, dy, dgate, dup)
Napi::Value js_swiglu_backward(const Napi::CallbackInfo& info) {
  Args a(info, "swigluBackward", 5);
  const float* gate = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  const float* up = f32_exact(a, 1, "up", n, "gate");
  const float* dy = f32_exact(a, 2, "dy", n, "gate");
  float* dgate = f32_exact(a, 3, "dgate", n, "gate");
  float* dup = f32_exact(a, 4, "dup", n, "gate");
  elementwise(n, [&](int64_t b, int64_t e) { swiglu_bwd(b, e, gate, up, dy, dgate, dup); });
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- arithmetic

PW_AVX2 void add_range(int64_t b, int64_t e, const float* x, const float* y, float* out) {
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    st(out + i, k, _mm256_add_ps(ld(x + i, k), ld(y + i, k)));
  }
}
PW_AVX2 void mul_range(int64_t b, int64_t e, const float* x, const float* y, float* out) {
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    st(out + i, k, _mm256_mul_ps(ld(x + i, k), ld(y + i, k)));
  }
}
PW_AVX2 void axpy_range(int64_t b, int64_t e, float alpha, const float* x, float* y) {
  const __m256 av = _mm256_set1_ps(alpha);
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    st(y + i, k, _mm256_fmadd_ps(av, ld(x + i, k), ld(y + i, k)));
  }
}
PW_AVX2 void scale_range(int64_t b, int64_t e, float s, float* x) {
  const __m256 sv = _mm256_set1_ps(s);
  for (int64_t i = b; i < e; i += 8) {
    int64_t k = std::min<int64_t>(8, e - i);
    st(x + i, k, _mm256_mul_ps(sv, ld(x + i, k)));
  }
}

template <void (*K)(int64_t, int64_t, const float*, const float*, float*)>
Napi::Value js_binary(const Napi::CallbackInfo& info, const char* op) {
  Args a(info, op, 3);
  const float* x = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  const float* y = f32_exact(a, 1, "b", n, "a");
  float* out = f32_exact(a, 2, "out", n, "a");
  elementwise(n, [&](int64_t b, int64_t e) { K(b, e, x, y, out); });
  return info.Env().Undefined();
}
// JS: add(a, b, out), mul(a, b, out)
Napi::Value js_add(const Napi::CallbackInfo& info) { return js_binary<add_range>(info, "add"); }
Napi::Value js_mul(const Napi::CallbackInfo& info) { return js_binary<mul_range>(info, "mul"); }

// JS: axpy(alpha, x, y)
Napi::Value js_axpy(const Napi::CallbackInfo& info) {
  Args a(info, "axpy", 3);
  float alpha = static_cast<float>(a.f64(0));
  const float* x = a.f32(1, 0);
  int64_t n = length_of(a, 1);
  float* y = f32_exact(a, 2, "y", n, "x");
  elementwise(n, [&](int64_t b, int64_t e) { axpy_range(b, e, alpha, x, y); });
  return info.Env().Undefined();
}

// JS: scaleInPlace(x, s)
Napi::Value js_scale_in_place(const Napi::CallbackInfo& info) {
  Args a(info, "scaleInPlace", 2);
  float* x = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  float s = static_cast<float>(a.f64(1));
  elementwise(n, [&](int64_t b, int64_t e) { scale_range(b, e, s, x); });
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- reductions

PW_AVX2 double sum_squares_range(int64_t b, int64_t e, const float* x) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  double s = hsum_pd(_mm256_add_pd(a0, a1));
  for (; i < e; i++) s += static_cast<double>(x[i]) * x[i];
  return s;
}

// JS: sumSquares(x) -> Σ x² (double)
Napi::Value js_sum_squares(const Napi::CallbackInfo& info) {
  Args a(info, "sumSquares", 1);
  const float* x = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  int64_t parts = num_parts(n, kGrain);
  std::vector<double> partial(parts, 0.0);
  for_parts(n, parts, [&](int64_t t, int64_t b, int64_t e) { partial[t] = sum_squares_range(b, e, x); });
  double s = 0.0;
  for (double p : partial) s += p;
  return Napi::Number::New(info.Env(), s);
}

// First index in [b, e) whose exponent bits are all ones (NaN or ±Inf), or -1.
PW_AVX2 int64_t first_non_finite_range(int64_t b, int64_t e, const float* x) {
  const __m256i expo = _mm256_set1_epi32(0x7f800000);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    __m256i v = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), expo);
    if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, expo))) != 0) break;
  }
  for (; i < e; i++) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return i;
  }
  return -1;
}

// JS: firstNonFinite(x) -> index or -1
Napi::Value js_first_non_finite(const Napi::CallbackInfo& info) {
  Args a(info, "firstNonFinite", 1);
  const float* x = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  int64_t parts = num_parts(n, kGrain);
  std::vector<int64_t> found(parts, -1);
  for_parts(n, parts, [&](int64_t t, int64_t b, int64_t e) { found[t] = first_non_finite_range(b, e, x); });
  for (int64_t f : found)
    if (f >= 0) return Napi::Number::New(info.Env(), static_cast<double>(f));
  return Napi::Number::New(info.Env(), -1);
}

// First index of the largest element, as the sequential scan best = 0; if (x[i] > x[best]) best = i:
// a NaN never wins, a NaN at index 0 does (nothing compares greater), equal values (also -0 and +0) keep
// the first. So: 0 when x[0] is NaN, else the first i with x[i] == m, m the largest non-NaN value
// (max_ps returns its second operand, the running max, when the first is NaN). Greedy sampling's argmax.
PW_AVX2 int64_t argmax_of(const float* x, int64_t n) {
  if (n == 0 || std::isnan(x[0])) return 0;
  __m256 acc = _mm256_set1_ps(x[0]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_max_ps(_mm256_loadu_ps(x + i), acc);
  float lanes[8];
  _mm256_storeu_ps(lanes, acc);
  float m = lanes[0];
  for (int j = 1; j < 8; j++) m = lanes[j] > m ? lanes[j] : m;
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  const __m256 mv = _mm256_set1_ps(m);
  for (i = 0; i + 8 <= n; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), mv, _CMP_EQ_OQ));
    if (hit != 0) return i + __builtin_ctz(static_cast<unsigned>(hit));
  }
  for (; i < n; i++)
    if (x[i] == m) return i;
  return 0;  // not reached: m is one of the values
}

// JS: argmax(x) -> index (0 when empty)
Napi::Value js_argmax(const Napi::CallbackInfo& info) {
  Args a(info, "argmax", 1);
  const float* x = a.f32(0, 0);
  return Napi::Number::New(info.Env(), static_cast<double>(argmax_of(x, length_of(a, 0))));
}

// ---------------------------------------------------------------- embedding

// Table rows, checking the table is a whole number of rows; then every id (before any work).
int64_t check_embedding(const Args& a, const int32_t* ids, int64_t count, int64_t dim, int64_t table_len) {
  a.require(dim >= 1, "dim must be >= 1");
  a.require(table_len % dim == 0,
            "table length " + std::to_string(table_len) + " is not a multiple of dim " + std::to_string(dim));
  int64_t rows = table_len / dim;
  for (int64_t i = 0; i < count; i++)
    if (ids[i] < 0 || ids[i] >= rows)
      fail(a.env(), a.op, "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                              " outside table rows [0, " + std::to_string(rows) + ")");
  return rows;
}

// JS: embeddingForward(ids, dim, table, out)
Napi::Value js_embedding_forward(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingForward", 4);
  const int32_t* ids = a.i32(0, 0);
  int64_t count = length_of(a, 0);
  int64_t dim = count_arg(a, 1, "dim");
  const float* table = a.f32(2, 0);
  check_embedding(a, ids, count, dim, length_of(a, 2));
  float* out = a.f32(3, checked_mul(a, count, dim));
  for_parts(count, num_parts(count, row_grain(dim)), [&](int64_t, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) std::memcpy(out + i * dim, table + static_cast<int64_t>(ids[i]) * dim, dim * sizeof(float));
  });
  return info.Env().Undefined();
}

// dtable[ids[i], c0:c1] += dout[i, c0:c1]: split over columns, so repeated ids never race.
PW_AVX2 void embedding_bwd_cols(int64_t c0, int64_t c1, const int32_t* ids, int64_t count, int64_t dim,
                                const float* dout, float* dtable) {
  for (int64_t i = 0; i < count; i++) {
    const float* src = dout + i * dim;
    float* dst = dtable + static_cast<int64_t>(ids[i]) * dim;
    for (int64_t c = c0; c < c1; c += 8) {
      int64_t k = std::min<int64_t>(8, c1 - c);
      st(dst + c, k, _mm256_add_ps(ld(dst + c, k), ld(src + c, k)));
    }
  }
}

// JS: embeddingBackward(ids, dim, dout, dtable)
Napi::Value js_embedding_backward(const Napi::CallbackInfo& info) {
  Args a(info, "embeddingBackward", 4);
  const int32_t* ids = a.i32(0, 0);
  int64_t count = length_of(a, 0);
  int64_t dim = count_arg(a, 1, "dim");
  const float* dout = a.f32(2, checked_mul(a, count, dim));
  float* dtable = a.f32(3, 0);
  check_embedding(a, ids, count, dim, length_of(a, 3));
  // Column parts of at least 64 floats, and only when there is enough work overall.
  int64_t parts = checked_mul(a, count, dim) < kGrain ? 1 : num_parts(dim, 64);
  for_parts(dim, parts, [&](int64_t, int64_t c0, int64_t c1) { embedding_bwd_cols(c0, c1, ids, count, dim, dout, dtable); });
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- AdamW

struct AdamConsts {
  float decay, b1, omb1, b2, omb2, step_size, inv_bc2_sqrt, eps;
};

// torch.optim.AdamW: p *= 1 - lr·wd; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²;
// p -= lr/(1-b1^t) · m / (sqrt(v)/sqrt(1-b2^t) + eps).
PW_AVX2 void adamw_range(int64_t b, int64_t e, const AdamConsts& k, float* p, const float* g, float* m, float* v) {
  const __m256 decay = _mm256_set1_ps(k.decay), b1 = _mm256_set1_ps(k.b1), omb1 = _mm256_set1_ps(k.omb1);
  const __m256 b2 = _mm256_set1_ps(k.b2), omb2 = _mm256_set1_ps(k.omb2), ss = _mm256_set1_ps(k.step_size);
  const __m256 ib = _mm256_set1_ps(k.inv_bc2_sqrt), eps = _mm256_set1_ps(k.eps);
  for (int64_t i = b; i < e; i += 8) {
    int64_t n = std::min<int64_t>(8, e - i);
    __m256 gv = ld(g + i, n);
    __m256 mv = _mm256_fmadd_ps(b1, ld(m + i, n), _mm256_mul_ps(omb1, gv));
    __m256 vv = _mm256_fmadd_ps(b2, ld(v + i, n), _mm256_mul_ps(omb2, _mm256_mul_ps(gv, gv)));
    __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vv), ib, eps);
    __m256 pv = _mm256_mul_ps(ld(p + i, n), decay);
    st(m + i, n, mv);
    st(v + i, n, vv);
    st(p + i, n, _mm256_fnmadd_ps(ss, _mm256_div_ps(mv, denom), pv));
  }
}

// JS: adamw(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value js_adamw(const Napi::CallbackInfo& info) {
  Args a(info, "adamw", 10);
  float* p = a.f32(0, 0);
  int64_t n = length_of(a, 0);
  const float* g = f32_exact(a, 1, "g", n, "p");
  float* m = f32_exact(a, 2, "m", n, "p");
  float* v = f32_exact(a, 3, "v", n, "p");
  double lr = a.f64(4), beta1 = a.f64(5), beta2 = a.f64(6), eps = a.f64(7), wd = a.f64(8);
  int64_t step = count_arg(a, 9, "step");
  a.require(step >= 1, "step must be an integer >= 1, got " + std::to_string(step));
  AdamConsts k;
  k.decay = static_cast<float>(1.0 - lr * wd);
  k.b1 = static_cast<float>(beta1);
  k.omb1 = static_cast<float>(1.0 - beta1);
  k.b2 = static_cast<float>(beta2);
  k.omb2 = static_cast<float>(1.0 - beta2);
  k.step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, static_cast<double>(step))));
  k.inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step))));
  k.eps = static_cast<float>(eps);
  elementwise(n, [&](int64_t b, int64_t e) { adamw_range(b, e, k, p, g, m, v); });
  return info.Env().Undefined();
}

}  // namespace

REFRAG_EXPORT("siluForward", js_silu_forward);
REFRAG_EXPORT("siluBackward", js_silu_backward);
REFRAG_EXPORT("geluForward", js_gelu_forward);
REFRAG_EXPORT("geluBackward", js_gelu_backward);
REFRAG_EXPORT("swigluForward", js_swiglu_forward);
REFRAG_EXPORT("swigluBackward", js_swiglu_backward);
REFRAG_EXPORT("add", js_add);
REFRAG_EXPORT("mul", js_mul);
REFRAG_EXPORT("axpy", js_axpy);
REFRAG_EXPORT("scaleInPlace", js_scale_in_place);
REFRAG_EXPORT("sumSquares", js_sum_squares);
REFRAG_EXPORT("firstNonFinite", js_first_non_finite);
REFRAG_EXPORT("argmax", js_argmax);
REFRAG_EXPORT("embeddingForward", js_embedding_forward);
REFRAG_EXPORT("embeddingBackward", js_embedding_backward);
REFRAG_EXPORT("adamw", js_adamw);

}  // namespace pw
}  // namespace refrag
