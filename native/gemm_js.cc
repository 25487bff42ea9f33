// JS bindings of the GEMM family: argument checks that name the op and the shapes, then gemm.h.
#include <cmath>
#include <string>

#include "common.h"
#include "gemm.h"
#include "pool.h"

namespace refrag {
namespace {

int64_t dim(const Args& a, size_t i, const char* name) {
  double v = a.f64(i);
  if (!(v >= 0 && v <= 2147483647.0 && std::floor(v) == v))
    fail(a.env(), a.op, std::string(name) + " must be a non-negative integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

template <typename T>
T* typed(const Args& a, size_t i, napi_typedarray_type type, const char* type_name, const char* name,
         int64_t need, const std::string& shape) {
  if (!a.info[i].IsTypedArray() || a.info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    fail(a.env(), a.op, std::string(name) + " (argument " + std::to_string(i) + ") must be a " + type_name);
  auto arr = a.info[i].As<Napi::TypedArray>();
  const int64_t len = static_cast<int64_t>(arr.ElementLength());
  if (len < need)
    fail(a.env(), a.op, std::string(name) + " has " + std::to_string(len) + " elements, needs " +
                            std::to_string(need) + " (" + shape + ")");
  return reinterpret_cast<T*>(static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset());
}
float* f32(const Args& a, size_t i, const char* name, int64_t need, const std::string& shape) {
  return typed<float>(a, i, napi_float32_array, "Float32Array", name, need, shape);
}
uint16_t* bf16(const Args& a, size_t i, const char* name, int64_t need, const std::string& shape) {
  return typed<uint16_t>(a, i, napi_uint16_array, "Uint16Array of bf16 bits", name, need, shape);
}

std::string shape_of(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
         " transA=" + (ta ? "true" : "false") + " transB=" + (tb ? "true" : "false");
}

// gemm(transA, transB, M, N, K, alpha, A, B, beta, C)
Napi::Value js_gemm(const Napi::CallbackInfo& info) {
  Args a(info, "gemm", 10);
  const bool ta = a.flag(0), tb = a.flag(1);
  const int64_t M = dim(a, 2, "M"), N = dim(a, 3, "N"), K = dim(a, 4, "K");
  const float alpha = static_cast<float>(a.f64(5)), beta = static_cast<float>(a.f64(8));
  const std::string s = shape_of(ta, tb, M, N, K);
  const float* A = f32(a, 6, "A", M * K, s);
  const float* B = f32(a, 7, "B", K * N, s);
  float* C = f32(a, 9, "C", M * N, s);
  sgemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
  return info.Env().Undefined();
}

// gemmBf16(transB, M, N, K, alpha, A, B, beta, C)
Napi::Value js_gemm_bf16(const Napi::CallbackInfo& info) {
  Args a(info, "gemmBf16", 9);
  const bool tb = a.flag(0);
  const int64_t M = dim(a, 1, "M"), N = dim(a, 2, "N"), K = dim(a, 3, "K");
  const float alpha = static_cast<float>(a.f64(4)), beta = static_cast<float>(a.f64(7));
  const std::string s = shape_of(false, tb, M, N, K);
  const float* A = f32(a, 5, "A", M * K, s);
  const uint16_t* B = bf16(a, 6, "B", K * N, s);
  float* C = f32(a, 8, "C", M * N, s);
  sgemm_bf16(false, tb, M, N, K, alpha, A, K, B, tb ? K : N, beta, C, N);
  return info.Env().Undefined();
}

// gemmBatched(transA, transB, batch, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC)
Napi::Value js_gemm_batched(const Napi::CallbackInfo& info) {
  Args a(info, "gemmBatched", 14);
  const bool ta = a.flag(0), tb = a.flag(1);
  const int64_t batch = dim(a, 2, "batch"), M = dim(a, 3, "M"), N = dim(a, 4, "N"), K = dim(a, 5, "K");
  const float alpha = static_cast<float>(a.f64(6)), beta = static_cast<float>(a.f64(11));
  const int64_t sA = dim(a, 8, "strideA"), sB = dim(a, 10, "strideB"), sC = dim(a, 13, "strideC");
  const std::string s = "batch=" + std::to_string(batch) + " " + shape_of(ta, tb, M, N, K) +
                        " strides=" + std::to_string(sA) + "," + std::to_string(sB) + "," + std::to_string(sC);
  a.require(batch <= 1 || M * N == 0 || sC >= M * N,
            "strideC " + std::to_string(sC) + " < M*N would make outputs overlap (" + s + ")");
  auto need = [&](int64_t stride, int64_t size) { return batch == 0 ? 0 : (batch - 1) * stride + size; };
  const float* A = f32(a, 7, "A", need(sA, M * K), s);
  const float* B = f32(a, 9, "B", need(sB, K * N), s);
  float* C = f32(a, 12, "C", need(sC, M * N), s);
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  const int threads = num_threads();
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  // Many products (or small ones): one product per task. A few large ones: parallel inside each.
  const bool over_batch = threads > 1 && batch >= threads &&
                          (batch % threads == 0 || batch >= 4 * threads || flops < 4e6);
  auto one = [&](int64_t b, int t) {
    sgemm(ta, tb, M, N, K, alpha, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, N, t);
  };
  if (over_batch)
    parallel_tasks(batch, [&](int64_t b) { one(b, 1); });
  else
    for (int64_t b = 0; b < batch; b++) one(b, threads);
  return info.Env().Undefined();
}

// gemvRows(R, N, K, alpha, X, W, beta, Y) and gemvRowsBf16(...): Y[R×N] = alpha · X · Wᵀ + beta · Y.
template <bool kBf16>
Napi::Value js_gemv_rows(const Napi::CallbackInfo& info) {
  Args a(info, kBf16 ? "gemvRowsBf16" : "gemvRows", 8);
  const int64_t R = dim(a, 0, "R"), N = dim(a, 1, "N"), K = dim(a, 2, "K");
  const float alpha = static_cast<float>(a.f64(3)), beta = static_cast<float>(a.f64(6));
  const std::string s = "R=" + std::to_string(R) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
  const float* X = f32(a, 4, "X", R * K, s);
  float* Y = f32(a, 7, "Y", R * N, s);
  if (kBf16)
    sgemv_rows_bf16(R, N, K, alpha, X, bf16(a, 5, "W", N * K, s), beta, Y);
  else
    sgemv_rows(R, N, K, alpha, X, f32(a, 5, "W", N * K, s), beta, Y);
  return info.Env().Undefined();
}

Napi::Value js_gemv_rows_f32(const Napi::CallbackInfo& info) { return js_gemv_rows<false>(info); }
Napi::Value js_gemv_rows_bf16(const Napi::CallbackInfo& info) { return js_gemv_rows<true>(info); }

// gemvKMajor(R, N, K, alpha, X, Wt, beta, Y) and gemvKMajorBf16(...): Y[R×N] = alpha · X · Wt + beta · Y,
// Wt stored K×N; gemvPanels / gemvPanelsBf16 the same with Wt in the panel layout (K·N values too).
template <bool kBf16, bool kPanels>
Napi::Value js_gemv_kmajor(const Napi::CallbackInfo& info) {
  const char* op = kPanels ? (kBf16 ? "gemvPanelsBf16" : "gemvPanels") : (kBf16 ? "gemvKMajorBf16" : "gemvKMajor");
  Args a(info, op, 8);
  const int64_t R = dim(a, 0, "R"), N = dim(a, 1, "N"), K = dim(a, 2, "K");
  const float alpha = static_cast<float>(a.f64(3)), beta = static_cast<float>(a.f64(6));
  const std::string s = "R=" + std::to_string(R) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
  const float* X = f32(a, 4, "X", R * K, s);
  float* Y = f32(a, 7, "Y", R * N, s);
  if (kBf16)
    (kPanels ? sgemv_panels_bf16 : sgemv_kmajor_bf16)(R, N, K, alpha, X, bf16(a, 5, "Wt", K * N, s), beta, Y, 0);
  else
    (kPanels ? sgemv_panels : sgemv_kmajor)(R, N, K, alpha, X, f32(a, 5, "Wt", K * N, s), beta, Y, 0);
  return info.Env().Undefined();
}

Napi::Value js_gemv_kmajor_f32(const Napi::CallbackInfo& info) { return js_gemv_kmajor<false, false>(info); }
Napi::Value js_gemv_kmajor_bf16(const Napi::CallbackInfo& info) { return js_gemv_kmajor<true, false>(info); }
Napi::Value js_gemv_panels_f32(const Napi::CallbackInfo& info) { return js_gemv_kmajor<false, true>(info); }
Napi::Value js_gemv_panels_bf16(const Napi::CallbackInfo& info) { return js_gemv_kmajor<true, true>(info); }

// f32ToBf16(src, dst), bf16ToF32(src, dst): equal lengths.
Napi::Value js_f32_to_bf16(const Napi::CallbackInfo& info) {
  Args a(info, "f32ToBf16", 2);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(a.env(), a.op, "src (argument 0) must be a Float32Array");
  const int64_t n = static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength());
  const float* src = f32(a, 0, "src", n, "n=" + std::to_string(n));
  uint16_t* dst = bf16(a, 1, "dst", n, "n=" + std::to_string(n));
  f32_to_bf16(src, dst, n);
  return info.Env().Undefined();
}

Napi::Value js_bf16_to_f32(const Napi::CallbackInfo& info) {
  Args a(info, "bf16ToF32", 2);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
    fail(a.env(), a.op, "src (argument 0) must be a Uint16Array of bf16 bits");
  const int64_t n = static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength());
  const uint16_t* src = bf16(a, 0, "src", n, "n=" + std::to_string(n));
  float* dst = f32(a, 1, "dst", n, "n=" + std::to_string(n));
  bf16_to_f32(src, dst, n);
  return info.Env().Undefined();
}

}  // namespace

REFRAG_EXPORT("gemm", js_gemm);
REFRAG_EXPORT("gemmBf16", js_gemm_bf16);
REFRAG_EXPORT("gemmBatched", js_gemm_batched);
REFRAG_EXPORT("gemvRows", js_gemv_rows_f32);
REFRAG_EXPORT("gemvRowsBf16", js_gemv_rows_bf16);
REFRAG_EXPORT("gemvKMajor", js_gemv_kmajor_f32);
REFRAG_EXPORT("gemvKMajorBf16", js_gemv_kmajor_bf16);
REFRAG_EXPORT("gemvPanels", js_gemv_panels_f32);
REFRAG_EXPORT("gemvPanelsBf16", js_gemv_panels_bf16);
REFRAG_EXPORT("f32ToBf16", js_f32_to_bf16);
REFRAG_EXPORT("bf16ToF32", js_bf16_to_f32);

}  // namespace refrag
