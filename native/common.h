// Shared plumbing for every kernel file: export registration, argument access that names the op,
// and the instruction-set choice (AVX-512 or AVX2, picked at run time, overridable for tests).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace refrag {

using NativeFn = Napi::Value (*)(const Napi::CallbackInfo&);

// Each kernel file registers its functions with REFRAG_EXPORT; addon.cc exports them all, so adding a
// kernel never means editing a central list.
std::vector<std::pair<const char*, NativeFn>>& export_registry();
struct Register {
  Register(const char* name, NativeFn fn) { export_registry().push_back({name, fn}); }
};
#define REFRAG_EXPORT(name, fn) static ::refrag::Register refrag_register_##fn(name, fn)

// Which vector code paths run. Detected once; tests force the fallback with setIsa("avx2").
enum class Isa { avx2 = 0, avx512 = 1 };
Isa isa();
bool has_avx512bf16();  // AVX512-BF16 dot products available *and* isa() == avx512
void set_isa(Isa isa);

[[noreturn]] inline void fail(const Napi::Env& env, const std::string& op, const std::string& msg) {
  throw Napi::TypeError::New(env, op + ": " + msg);
}

// Argument accessors: check type and length, and name the op and argument position in errors.
struct Args {
  const Napi::CallbackInfo& info;
  const char* op;
  Args(const Napi::CallbackInfo& i, const char* name, size_t expected) : info(i), op(name) {
    if (info.Length() != expected)
      fail(info.Env(), op, "expected " + std::to_string(expected) + " arguments, got " +
                               std::to_string(info.Length()));
  }
  Napi::Env env() const { return info.Env(); }
  int64_t i64(size_t i) const {
    if (!info[i].IsNumber()) fail(env(), op, "argument " + std::to_string(i) + " must be a number");
    return info[i].As<Napi::Number>().Int64Value();
  }
  double f64(size_t i) const {
    if (!info[i].IsNumber()) fail(env(), op, "argument " + std::to_string(i) + " must be a number");
    return info[i].As<Napi::Number>().DoubleValue();
  }
  bool flag(size_t i) const {
    if (!info[i].IsBoolean()) fail(env(), op, "argument " + std::to_string(i) + " must be a boolean");
    return info[i].As<Napi::Boolean>().Value();
  }
  bool is_null(size_t i) const { return info[i].IsNull() || info[i].IsUndefined(); }
  // A typed array of element type T with at least `min_len` elements.
  template <typename T>
  T* array(size_t i, napi_typedarray_type type, const char* type_name, int64_t min_len) const {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
      fail(env(), op, "argument " + std::to_string(i) + " must be a " + type_name);
    auto arr = info[i].As<Napi::TypedArray>();
    if (static_cast<int64_t>(arr.ElementLength()) < min_len)
      fail(env(), op, "argument " + std::to_string(i) + " has " + std::to_string(arr.ElementLength()) +
                          " elements, needs " + std::to_string(min_len));
    auto* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
    return reinterpret_cast<T*>(base);
  }
  float* f32(size_t i, int64_t min_len) const {
    return array<float>(i, napi_float32_array, "Float32Array", min_len);
  }
  uint16_t* u16(size_t i, int64_t min_len) const {
    return array<uint16_t>(i, napi_uint16_array, "Uint16Array (bf16)", min_len);
  }
  int32_t* i32(size_t i, int64_t min_len) const {
    return array<int32_t>(i, napi_int32_array, "Int32Array", min_len);
  }
  void require(bool ok, const std::string& msg) const {
    if (!ok) fail(env(), op, msg);
  }
};

}  // namespace refrag
