// The addon's entry point: exports every function registered with REFRAG_EXPORT, plus the CPU/ISA
// controls shared by all kernels.
#include <exception>
#include <new>
#include <string>

#include "common.h"

namespace refrag {

std::vector<std::pair<const char*, NativeFn>>& export_registry() {
  static std::vector<std::pair<const char*, NativeFn>> registry;
  return registry;
}

namespace {
bool cpu_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
bool cpu_avx512bf16() {
  // __builtin_cpu_supports("avx512bf16") needs a newer compiler runtime on some systems; read CPUID.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(1));
  return (eax >> 5) & 1;
}
bool cpu_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
Isa g_isa = cpu_avx512() ? Isa::avx512 : Isa::avx2;
}  // namespace

Isa isa() { return g_isa; }
void set_isa(Isa i) { g_isa = i; }
bool has_avx512bf16() { return g_isa == Isa::avx512 && cpu_avx512() && cpu_avx512bf16(); }

static Napi::Value js_cpu_features(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("avx2", cpu_avx2());
  o.Set("avx512", cpu_avx512());
  o.Set("avx512bf16", cpu_avx512() && cpu_avx512bf16());
  o.Set("isa", g_isa == Isa::avx512 ? "avx512" : "avx2");
  return o;
}

static Napi::Value js_set_isa(const Napi::CallbackInfo& info) {
  Args a(info, "setIsa", 1);
  a.require(info[0].IsString(), "argument 0 must be 'avx512' or 'avx2'");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name == "avx512") {
    a.require(cpu_avx512(), "this CPU has no AVX-512");
    g_isa = Isa::avx512;
  } else if (name == "avx2") {
    a.require(cpu_avx2(), "this CPU has no AVX2+FMA");
    g_isa = Isa::avx2;
  } else {
    fail(info.Env(), "setIsa", "unknown instruction set '" + name + "' (use 'avx512' or 'avx2')");
  }
  return info.Env().Undefined();
}
REFRAG_EXPORT("cpuFeatures", js_cpu_features);
REFRAG_EXPORT("setIsa", js_set_isa);

// Every export runs inside one guard: a C++ exception that is not already a JS error (std::bad_alloc, a
// std::length_error from a vector) becomes a JS Error naming the op instead of aborting the process.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (auto& [name, fn] : export_registry()) {
    const char* op = name;
    const NativeFn f = fn;
    auto guarded = [op, f](const Napi::CallbackInfo& info) -> Napi::Value {
      try {
        return f(info);
      } catch (const Napi::Error&) {
        throw;
      } catch (const std::bad_alloc&) {
        throw Napi::Error::New(info.Env(), std::string(op) + ": out of memory");
      } catch (const std::exception& e) {
        throw Napi::Error::New(info.Env(), std::string(op) + ": " + e.what());
      }
    };
    exports.Set(name, Napi::Function::New(env, guarded, name));
  }
  return exports;
}

}  // namespace refrag

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return refrag::Init(env, exports); }
NODE_API_MODULE(refrag, InitAddon)
