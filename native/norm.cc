// Row-wise kernels: RMSNorm, LayerNorm, softmax, softmax cross-entropy, rotary embedding.
// Shapes: x, y: [rows, dim]; w, b: [dim]; logits: [rows, V]; RoPE x: [T, H, D].
// Rows are split over the pool when the work is large; parameter gradients (dw, db) are reduced from
// per-part buffers in a fixed order, so results do not depend on scheduling.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "pointwise_simd.h"
#include "pool.h"

namespace refrag {
namespace pw {
namespace {

// Adds each part's buffer (parts × dim) into dst, in part order.
PW_AVX2 void reduce_parts(const std::vector<float>& partial, int64_t parts, int64_t dim, float* dst) {
  for (int64_t t = 0; t < parts; t++) {
    const float* src = partial.data() + t * dim;
    for (int64_t i = 0; i < dim; i++) dst[i] += src[i];
  }
}

// ---------------------------------------------------------------- RMSNorm

PW_AVX2 void rmsnorm_fwd_rows(int64_t r0, int64_t r1, int64_t dim, float eps, const float* x, const float* w,
                              float* y, float* rstd) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= dim; i += 16) {
      __m256 v0 = _mm256_loadu_ps(xr + i), v1 = _mm256_loadu_ps(xr + i + 8);
      a0 = _mm256_fmadd_ps(v0, v0, a0);
      a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    for (; i + 8 <= dim; i += 8) {
      __m256 v = _mm256_loadu_ps(xr + i);
      a0 = _mm256_fmadd_ps(v, v, a0);
    }
    if (i < dim) {
      __m256 v = load_tail(xr + i, dim - i);
      a1 = _mm256_fmadd_ps(v, v, a1);
    }
    const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hsum(_mm256_add_ps(a0, a1))) / dim + eps));
    rstd[r] = s;
    const __m256 sv = _mm256_set1_ps(s);
    for (i = 0; i + 8 <= dim; i += 8)
      _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), sv), _mm256_loadu_ps(w + i)));
    if (i < dim)
      store_tail(yr + i, dim - i, _mm256_mul_ps(_mm256_mul_ps(load_tail(xr + i, dim - i), sv), load_tail(w + i, dim - i)));
  }
}

// dx = s·w·dy - (s³/dim)·(Σ w·dy·x)·x;  dw += dy·x·s.
PW_AVX2 void rmsnorm_bwd_rows(int64_t r0, int64_t r1, int64_t dim, const float* x, const float* w, const float* rstd,
                              const float* dy, float* dx, float* dw) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    const float* dyr = dy + r * dim;
    float* dxr = dx + r * dim;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8)
      acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(dyr + i)), _mm256_loadu_ps(xr + i), acc);
    if (i < dim) {
      int64_t n = dim - i;
      acc = _mm256_fmadd_ps(_mm256_mul_ps(load_tail(w + i, n), load_tail(dyr + i, n)), load_tail(xr + i, n), acc);
    }
    const float s = rstd[r];
    const __m256 sv = _mm256_set1_ps(s);
    const __m256 cv = _mm256_set1_ps(static_cast<float>(static_cast<double>(s) * s * s * hsum(acc) / dim));
    for (i = 0; i + 8 <= dim; i += 8) {
      __m256 xv = _mm256_loadu_ps(xr + i), dyv = _mm256_loadu_ps(dyr + i), wv = _mm256_loadu_ps(w + i);
      _mm256_storeu_ps(dxr + i, _mm256_fnmadd_ps(cv, xv, _mm256_mul_ps(_mm256_mul_ps(sv, wv), dyv)));
      _mm256_storeu_ps(dw + i, _mm256_fmadd_ps(_mm256_mul_ps(dyv, xv), sv, _mm256_loadu_ps(dw + i)));
    }
    if (i < dim) {
      int64_t n = dim - i;
      __m256 xv = load_tail(xr + i, n), dyv = load_tail(dyr + i, n), wv = load_tail(w + i, n);
      store_tail(dxr + i, n, _mm256_fnmadd_ps(cv, xv, _mm256_mul_ps(_mm256_mul_ps(sv, wv), dyv)));
      store_tail(dw + i, n, _mm256_fmadd_ps(_mm256_mul_ps(dyv, xv), sv, load_tail(dw + i, n)));
    }
  }
}

// JS: rmsnormForward(rows, dim, eps, x, w, y, rstd)
Napi::Value js_rmsnorm_forward(const Napi::CallbackInfo& info) {
  Args a(info, "rmsnormForward", 7);
  int64_t rows = count_arg(a, 0, "rows"), dim = count_arg(a, 1, "dim");
  float eps = static_cast<float>(a.f64(2));
  int64_t n = checked_mul(a, rows, dim);
  const float* x = a.f32(3, n);
  const float* w = a.f32(4, dim);
  float* y = a.f32(5, n);
  float* rstd = a.f32(6, rows);
  for_parts(rows, num_parts(rows, row_grain(dim)),
            [&](int64_t, int64_t b, int64_t e) { rmsnorm_fwd_rows(b, e, dim, eps, x, w, y, rstd); });
  return info.Env().Undefined();
}

// JS: rmsnormBackward(rows, dim, x, w, rstd, dy, dx, dw)
Napi::Value js_rmsnorm_backward(const Napi::CallbackInfo& info) {
  Args a(info, "rmsnormBackward", 8);
  int64_t rows = count_arg(a, 0, "rows"), dim = count_arg(a, 1, "dim");
  int64_t n = checked_mul(a, rows, dim);
  const float* x = a.f32(2, n);
  const float* w = a.f32(3, dim);
  const float* rstd = a.f32(4, rows);
  const float* dy = a.f32(5, n);
  float* dx = a.f32(6, n);
  float* dw = a.f32(7, dim);
  int64_t parts = num_parts(rows, row_grain(dim));
  if (parts <= 1) {
    rmsnorm_bwd_rows(0, rows, dim, x, w, rstd, dy, dx, dw);
  } else {
    std::vector<float> partial(parts * dim, 0.0f);
    for_parts(rows, parts, [&](int64_t t, int64_t b, int64_t e) {
      rmsnorm_bwd_rows(b, e, dim, x, w, rstd, dy, dx, partial.data() + t * dim);
    });
    reduce_parts(partial, parts, dim, dw);
  }
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- LayerNorm

PW_AVX2 void layernorm_fwd_rows(int64_t r0, int64_t r1, int64_t dim, float eps, const float* x, const float* w,
                                const float* b, float* y, float* mean, float* rstd) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(xr + i));
    if (i < dim) acc = _mm256_add_ps(acc, load_tail(xr + i, dim - i));
    const float m = hsum(acc) / static_cast<float>(dim);
    const __m256 mv = _mm256_set1_ps(m);
    acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= dim; i += 8) {
      __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), mv);
      acc = _mm256_fmadd_ps(d, d, acc);
    }
    if (i < dim) {
      __m256 d = _mm256_and_ps(_mm256_sub_ps(load_tail(xr + i, dim - i), mv), _mm256_castsi256_ps(tail_mask(dim - i)));
      acc = _mm256_fmadd_ps(d, d, acc);
    }
    const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hsum(acc)) / dim + eps));
    mean[r] = m;
    rstd[r] = s;
    const __m256 sv = _mm256_set1_ps(s);
    for (i = 0; i + 8 <= dim; i += 8) {
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv), sv);
      _mm256_storeu_ps(yr + i, _mm256_fmadd_ps(xh, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    if (i < dim) {
      int64_t n = dim - i;
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load_tail(xr + i, n), mv), sv);
      store_tail(yr + i, n, _mm256_fmadd_ps(xh, load_tail(w + i, n), load_tail(b + i, n)));
    }
  }
}

// With g = w·dy, xh = (x - mean)·s:  dx = s·(g - mean(g) - xh·mean(g·xh));  dw += dy·xh;  db += dy.
PW_AVX2 void layernorm_bwd_rows(int64_t r0, int64_t r1, int64_t dim, const float* x, const float* w,
                                const float* mean, const float* rstd, const float* dy, float* dx, float* dw,
                                float* db) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    const float* dyr = dy + r * dim;
    float* dxr = dx + r * dim;
    const __m256 mv = _mm256_set1_ps(mean[r]), sv = _mm256_set1_ps(rstd[r]);
    __m256 ag = _mm256_setzero_ps(), agx = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      __m256 g = _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(dyr + i));
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv), sv);
      ag = _mm256_add_ps(ag, g);
      agx = _mm256_fmadd_ps(g, xh, agx);
    }
    if (i < dim) {
      int64_t n = dim - i;
      __m256 g = _mm256_mul_ps(load_tail(w + i, n), load_tail(dyr + i, n));
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load_tail(xr + i, n), mv), sv);
      ag = _mm256_add_ps(ag, g);
      agx = _mm256_fmadd_ps(g, xh, agx);  // g is 0 in the masked lanes
    }
    const __m256 sg = _mm256_set1_ps(hsum(ag) / static_cast<float>(dim));
    const __m256 sgx = _mm256_set1_ps(hsum(agx) / static_cast<float>(dim));
    for (i = 0; i + 8 <= dim; i += 8) {
      __m256 dyv = _mm256_loadu_ps(dyr + i);
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mv), sv);
      __m256 g = _mm256_mul_ps(_mm256_loadu_ps(w + i), dyv);
      _mm256_storeu_ps(dxr + i, _mm256_mul_ps(sv, _mm256_fnmadd_ps(xh, sgx, _mm256_sub_ps(g, sg))));
      _mm256_storeu_ps(dw + i, _mm256_fmadd_ps(dyv, xh, _mm256_loadu_ps(dw + i)));
      _mm256_storeu_ps(db + i, _mm256_add_ps(dyv, _mm256_loadu_ps(db + i)));
    }
    if (i < dim) {
      int64_t n = dim - i;
      __m256 dyv = load_tail(dyr + i, n);
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(load_tail(xr + i, n), mv), sv);
      __m256 g = _mm256_mul_ps(load_tail(w + i, n), dyv);
      store_tail(dxr + i, n, _mm256_mul_ps(sv, _mm256_fnmadd_ps(xh, sgx, _mm256_sub_ps(g, sg))));
      store_tail(dw + i, n, _mm256_fmadd_ps(dyv, xh, load_tail(dw + i, n)));
      store_tail(db + i, n, _mm256_add_ps(dyv, load_tail(db + i, n)));
    }
  }
}

// JS: layernormForward(rows, dim, eps, x, w, b, y, mean, rstd)
Napi::Value js_layernorm_forward(const Napi::CallbackInfo& info) {
  Args a(info, "layernormForward", 9);
  int64_t rows = count_arg(a, 0, "rows"), dim = count_arg(a, 1, "dim");
  float eps = static_cast<float>(a.f64(2));
  int64_t n = checked_mul(a, rows, dim);
  const float* x = a.f32(3, n);
  const float* w = a.f32(4, dim);
  const float* b = a.f32(5, dim);
  float* y = a.f32(6, n);
  float* mean = a.f32(7, rows);
  float* rstd = a.f32(8, rows);
  for_parts(rows, num_parts(rows, row_grain(dim)),
            [&](int64_t, int64_t r0, int64_t r1) { layernorm_fwd_rows(r0, r1, dim, eps, x, w, b, y, mean, rstd); });
  return info.Env().Undefined();
}

// JS: layernormBackward(rows, dim, x, w, mean, rstd, dy, dx, dw, db)
Napi::Value js_layernorm_backward(const Napi::CallbackInfo& info) {
  Args a(info, "layernormBackward", 10);
  int64_t rows = count_arg(a, 0, "rows"), dim = count_arg(a, 1, "dim");
  int64_t n = checked_mul(a, rows, dim);
  const float* x = a.f32(2, n);
  const float* w = a.f32(3, dim);
  const float* mean = a.f32(4, rows);
  const float* rstd = a.f32(5, rows);
  const float* dy = a.f32(6, n);
  float* dx = a.f32(7, n);
  float* dw = a.f32(8, dim);
  float* db = a.f32(9, dim);
  int64_t parts = num_parts(rows, row_grain(dim));
  if (parts <= 1) {
    layernorm_bwd_rows(0, rows, dim, x, w, mean, rstd, dy, dx, dw, db);
  } else {
    std::vector<float> pw(parts * dim, 0.0f), pb(parts * dim, 0.0f);
    for_parts(rows, parts, [&](int64_t t, int64_t r0, int64_t r1) {
      layernorm_bwd_rows(r0, r1, dim, x, w, mean, rstd, dy, dx, pw.data() + t * dim, pb.data() + t * dim);
    });
    reduce_parts(pw, parts, dim, dw);
    reduce_parts(pb, parts, dim, db);
  }
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- softmax and cross-entropy

PW_AVX2 float row_max(const float* x, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m0 = ninf, m1 = ninf;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  if (i < n) m1 = _mm256_max_ps(m1, _mm256_blendv_ps(ninf, load_tail(x + i, n - i), _mm256_castsi256_ps(tail_mask(n - i))));
  return hmax(_mm256_max_ps(m0, m1));
}

// Σ exp(x - m); also writes the exponentials to y when y is not null.
PW_AVX2 float row_sum_exp(const float* x, int64_t n, float m, float* y) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv));
    if (y) {
      _mm256_storeu_ps(y + i, e0);
      _mm256_storeu_ps(y + i + 8, e1);
    }
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    if (y) _mm256_storeu_ps(y + i, e);
    s0 = _mm256_add_ps(s0, e);
  }
  if (i < n) {
    __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(load_tail(x + i, n - i), mv)), _mm256_castsi256_ps(tail_mask(n - i)));
    if (y) store_tail(y + i, n - i, e);
    s1 = _mm256_add_ps(s1, e);
  }
  return hsum(_mm256_add_ps(s0, s1));
}

PW_AVX2 void softmax_fwd_rows(int64_t r0, int64_t r1, int64_t dim, const float* x, float* y) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    const float m = row_max(xr, dim);
    const __m256 inv = _mm256_set1_ps(1.0f / row_sum_exp(xr, dim, m, yr));
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(yr + i), inv));
    if (i < dim) store_tail(yr + i, dim - i, _mm256_mul_ps(load_tail(yr + i, dim - i), inv));
  }
}

// dx = y·(dy - Σ y·dy)
PW_AVX2 void softmax_bwd_rows(int64_t r0, int64_t r1, int64_t dim, const float* y, const float* dy, float* dx) {
  for (int64_t r = r0; r < r1; r++) {
    const float* yr = y + r * dim;
    const float* dyr = dy + r * dim;
    float* dxr = dx + r * dim;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(yr + i), _mm256_loadu_ps(dyr + i), acc);
    if (i < dim) acc = _mm256_fmadd_ps(load_tail(yr + i, dim - i), load_tail(dyr + i, dim - i), acc);
    const __m256 dot = _mm256_set1_ps(hsum(acc));
    for (i = 0; i + 8 <= dim; i += 8)
      _mm256_storeu_ps(dxr + i, _mm256_mul_ps(_mm256_loadu_ps(yr + i), _mm256_sub_ps(_mm256_loadu_ps(dyr + i), dot)));
    if (i < dim) store_tail(dxr + i, dim - i, _mm256_mul_ps(load_tail(yr + i, dim - i), _mm256_sub_ps(load_tail(dyr + i, dim - i), dot)));
  }
}

// JS: softmaxForward(rows, dim, x, y)
Napi::Value js_softmax_forward(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxForward", 4);
  int64_t rows = count_arg(a, 0, "rows"), dim = count_arg(a, 1, "dim");
  int64_t n = checked_mul(a, rows, dim);
  const float* x = a.f32(2, n);
  float* y = a.f32(3, n);
  for_parts(rows, num_parts(rows, row_grain(dim)), [&](int64_t, int64_t b, int64_t e) { softmax_fwd_rows(b, e, dim, x, y); });
  return info.Env().Undefined();
}

// JS: softmaxBackward(rows, dim, y, dy, dx)
Napi::Value js_softmax_backward(const Napi::CallbackInfo& info) {
  Args a(info, "softmaxBackward", 5);
  int64_t rows = count_arg(a, 0, "rows"), dim = count_arg(a, 1, "dim");
  int64_t n = checked_mul(a, rows, dim);
  const float* y = a.f32(2, n);
  const float* dy = a.f32(3, n);
  float* dx = a.f32(4, n);
  for_parts(rows, num_parts(rows, row_grain(dim)),
            [&](int64_t, int64_t b, int64_t e) { softmax_bwd_rows(b, e, dim, y, dy, dx); });
  return info.Env().Undefined();
}

// Checks every target before any work (kernels running on the pool must not throw).
void check_targets(const Args& a, int64_t rows, int64_t V, const int32_t* targets, int64_t ignore) {
  for (int64_t r = 0; r < rows; r++) {
    int64_t t = targets[r];
    if (t != ignore && (t < 0 || t >= V))
      fail(a.env(), a.op, "target " + std::to_string(t) + " at row " + std::to_string(r) + " outside [0, " +
                              std::to_string(V) + ") (ignoreIndex " + std::to_string(ignore) + ")");
  }
}

// JS: crossEntropyForward(rows, V, logits, targets, ignoreIndex, lse) -> summed loss over kept rows
Napi::Value js_cross_entropy_forward(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyForward", 6);
  int64_t rows = count_arg(a, 0, "rows"), V = count_arg(a, 1, "V");
  int64_t n = checked_mul(a, rows, V);
  const float* logits = a.f32(2, n);
  const int32_t* targets = a.i32(3, rows);
  int64_t ignore = int_arg(a, 4, "ignoreIndex", INT32_MIN, INT32_MAX);
  float* lse = a.f32(5, rows);
  check_targets(a, rows, V, targets, ignore);
  std::vector<double> loss(rows, 0.0);
  for_parts(rows, num_parts(rows, row_grain(V)), [&](int64_t, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      if (targets[r] == ignore) {
        lse[r] = 0.0f;  // ignored rows are not computed
        continue;
      }
      const float* xr = logits + r * V;
      const float m = row_max(xr, V);
      const double l = static_cast<double>(m) + std::log(static_cast<double>(row_sum_exp(xr, V, m, nullptr)));
      lse[r] = static_cast<float>(l);
      loss[r] = l - xr[targets[r]];
    }
  });
  double total = 0.0;
  for (int64_t r = 0; r < rows; r++) total += loss[r];
  return Napi::Number::New(info.Env(), total);
}

// dlogits = scale·(exp(x - lse) - onehot(target)); zero rows for ignored targets.
PW_AVX2 void ce_bwd_rows(int64_t r0, int64_t r1, int64_t V, const float* logits, const int32_t* targets, int64_t ignore,
                         const float* lse, float scale, float* dl) {
  const __m256 sv = _mm256_set1_ps(scale);
  for (int64_t r = r0; r < r1; r++) {
    float* dr = dl + r * V;
    if (targets[r] == ignore) {
      std::fill(dr, dr + V, 0.0f);
      continue;
    }
    const float* xr = logits + r * V;
    const __m256 lv = _mm256_set1_ps(lse[r]);
    int64_t i = 0;
    for (; i + 8 <= V; i += 8) _mm256_storeu_ps(dr + i, _mm256_mul_ps(sv, exp8(_mm256_sub_ps(_mm256_loadu_ps(xr + i), lv))));
    if (i < V) store_tail(dr + i, V - i, _mm256_mul_ps(sv, exp8(_mm256_sub_ps(load_tail(xr + i, V - i), lv))));
    dr[targets[r]] -= scale;
  }
}

// JS: crossEntropyBackward(rows, V, logits, targets, ignoreIndex, lse, gradScale, dlogits)
Napi::Value js_cross_entropy_backward(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyBackward", 8);
  int64_t rows = count_arg(a, 0, "rows"), V = count_arg(a, 1, "V");
  int64_t n = checked_mul(a, rows, V);
  const float* logits = a.f32(2, n);
  const int32_t* targets = a.i32(3, rows);
  int64_t ignore = int_arg(a, 4, "ignoreIndex", INT32_MIN, INT32_MAX);
  const float* lse = a.f32(5, rows);
  float scale = static_cast<float>(a.f64(6));
  float* dl = a.f32(7, n);
  check_targets(a, rows, V, targets, ignore);
  for_parts(rows, num_parts(rows, row_grain(V)),
            [&](int64_t, int64_t b, int64_t e) { ce_bwd_rows(b, e, V, logits, targets, ignore, lse, scale, dl); });
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- RoPE

// Rotate pairs (i, i + D/2) of every head of tokens [t0, t1) by positions[t]·invFreq[i] (negated if inverse).
// Angles and their sines/cosines are computed in double, as in the reference, once per (theta, D,
// position): a training step applies RoPE dozens of times to the same positions, and libm's sin/cos
// showed up in its profile. The table grows on the JS thread before any worker reads it.
struct RopeTable {
  double theta;
  int64_t D;
  int64_t positions = 0;
  std::vector<float> cos, sin;  // [position][D / 2]
};
constexpr int64_t kRopeTableMax = 1 << 16;      // positions; beyond this (or for negative ones) compute directly
constexpr int64_t kRopeTableFloats = 1 << 22;   // per table (cos or sin): 16 MiB; wider heads hold fewer positions
constexpr size_t kRopeTables = 8;               // distinct (theta, D) pairs kept; more compute directly

// Positions a table for head dim D may hold.
int64_t rope_table_cap(int64_t D) { return std::min(kRopeTableMax, kRopeTableFloats / std::max<int64_t>(1, D / 2)); }

// The table for (theta, D) holding at least `positions` positions, or null when the table budget is spent
// (then the caller computes the angles directly). Callers check positions <= rope_table_cap(D).
const RopeTable* rope_table(double theta, int64_t D, int64_t positions) {
  static std::vector<RopeTable> tables;
  RopeTable* t = nullptr;
  for (RopeTable& x : tables)
    if (x.theta == theta && x.D == D) t = &x;
  if (t == nullptr) {
    if (tables.size() >= kRopeTables) return nullptr;
    tables.push_back(RopeTable{theta, D, 0, {}, {}});
    t = &tables.back();
  }
  if (t->positions < positions) {
    const int64_t half = D / 2, n = std::min(rope_table_cap(D), std::max(positions, 2 * t->positions));
    t->cos.resize(n * half);
    t->sin.resize(n * half);
    for (int64_t p = t->positions; p < n; p++)
      for (int64_t i = 0; i < half; i++) {
        const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
        const double ang = static_cast<double>(p) * inv_freq;
        t->cos[p * half + i] = static_cast<float>(std::cos(ang));
        t->sin[p * half + i] = static_cast<float>(std::sin(ang));
      }
    t->positions = n;
  }
  return t;
}

// Rotates tokens [t0, t1); cos_of(t) / sin_of(t) give the D/2 values of token t's position.
template <typename Angles>
PW_AVX2 void rope_tokens(int64_t t0, int64_t t1, int64_t H, int64_t D, bool inverse, float* x, Angles angles) {
  const int64_t half = D / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  const __m256 vsign = _mm256_set1_ps(sign);
  for (int64_t t = t0; t < t1; t++) {
    const auto [cs, sn] = angles(t);
    for (int64_t h = 0; h < H; h++) {
      float* x1 = x + (t * H + h) * D;
      float* x2 = x1 + half;
      int64_t i = 0;
      for (; i + 8 <= half; i += 8) {
        __m256 a = _mm256_loadu_ps(x1 + i), b = _mm256_loadu_ps(x2 + i);
        __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_mul_ps(vsign, _mm256_loadu_ps(sn + i));
        _mm256_storeu_ps(x1 + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
        _mm256_storeu_ps(x2 + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
      }
      for (; i < half; i++) {
        float a = x1[i], b = x2[i], s = sign * sn[i];
        x1[i] = a * cs[i] - b * s;
        x2[i] = b * cs[i] + a * s;
      }
    }
  }
}

// JS: rope(T, H, D, theta, positions, x, inverse)
Napi::Value js_rope(const Napi::CallbackInfo& info) {
  Args a(info, "rope", 7);
  int64_t T = dim_arg(a, 0, "T"), H = dim_arg(a, 1, "H"), D = dim_arg(a, 2, "D");
  // theta is a table key too: NaN would never match and make a new table per call.
  double theta = finite_arg(a, 3, "theta");
  a.require(theta > 0, "theta must be > 0, got " + num_str(theta));
  a.require(D % 2 == 0, "head dim D = " + std::to_string(D) + " must be even");
  const int64_t nx = checked_product(a, {T, H, D}, "x (T=" + std::to_string(T) + " H=" + std::to_string(H) +
                                                    " D=" + std::to_string(D) + ")");
  const int32_t* pos = a.i32(4, T);
  float* x = a.f32(5, nx);
  bool inverse = a.flag(6);
  if (T == 0 || H == 0 || D == 0) return info.Env().Undefined();  // nothing to rotate (D then bounds x)
  const int64_t half = D / 2;
  int64_t lo = 0, hi = 0;
  for (int64_t t = 0; t < T; t++) lo = std::min<int64_t>(lo, pos[t]), hi = std::max<int64_t>(hi, pos[t]);
  const int64_t parts = num_parts(T, row_grain(H * D));
  const RopeTable* tab = lo >= 0 && hi < rope_table_cap(D) ? rope_table(theta, D, hi + 1) : nullptr;
  if (tab != nullptr) {
    for_parts(T, parts, [&](int64_t, int64_t b, int64_t e) {
      rope_tokens(b, e, H, D, inverse, x, [&](int64_t t) {
        return std::pair{tab->cos.data() + pos[t] * half, tab->sin.data() + pos[t] * half};
      });
    });
    return info.Env().Undefined();
  }
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; i++) inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  for_parts(T, parts, [&](int64_t, int64_t b, int64_t e) {
    std::vector<float> cs(half), sn(half);
    rope_tokens(b, e, H, D, inverse, x, [&](int64_t t) {
      for (int64_t i = 0; i < half; i++) {
        const double ang = static_cast<double>(pos[t]) * inv_freq[i];
        cs[i] = static_cast<float>(std::cos(ang));
        sn[i] = static_cast<float>(std::sin(ang));
      }
      return std::pair{static_cast<const float*>(cs.data()), static_cast<const float*>(sn.data())};
    });
  });
  return info.Env().Undefined();
}

}  // namespace

REFRAG_EXPORT("rmsnormForward", js_rmsnorm_forward);
REFRAG_EXPORT("rmsnormBackward", js_rmsnorm_backward);
REFRAG_EXPORT("layernormForward", js_layernorm_forward);
REFRAG_EXPORT("layernormBackward", js_layernorm_backward);
REFRAG_EXPORT("softmaxForward", js_softmax_forward);
REFRAG_EXPORT("softmaxBackward", js_softmax_backward);
REFRAG_EXPORT("crossEntropyForward", js_cross_entropy_forward);
REFRAG_EXPORT("crossEntropyBackward", js_cross_entropy_backward);
REFRAG_EXPORT("rope", js_rope);

}  // namespace pw
}  // namespace refrag
