// JS bindings of the thread pool (pool.cc itself stays free of N-API, so plain C++ tools can link it).
#include <string>

#include "checks.h"
#include "common.h"
#include "pool.h"

namespace refrag {

// JS: setNumThreads(n), numThreads()
static Napi::Value js_set_num_threads(const Napi::CallbackInfo& info) {
  Args a(info, "setNumThreads", 1);
  int64_t n = int_arg(a, 0, "thread count", 1, 256);
  set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
static Napi::Value js_num_threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}
// JS: poolActive(): the workers inside a job, 0 between jobs (the tests' check that none runs astray).
static Napi::Value js_pool_active(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), pool_active());
}
REFRAG_EXPORT("setNumThreads", js_set_num_threads);
REFRAG_EXPORT("numThreads", js_num_threads);
REFRAG_EXPORT("poolActive", js_pool_active);

}  // namespace refrag
