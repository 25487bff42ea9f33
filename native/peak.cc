// The machine's measured fp32 FMA peak and memory read bandwidth, so benchmarks report "fraction of
// peak" against numbers taken on this machine rather than a datasheet. Independent accumulator chains
// (more than FMA latency × pipes: 4 cycles × 2 pipes on Zen 3) keep every FMA pipe busy; the count is
// FLOP over wall time.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common.h"
#include "pool.h"

namespace refrag {
namespace {

constexpr int64_t kChunk = 1 << 16;  // iterations between clock reads

// 12 chains × 8 lanes × 2 FLOP per iteration.
__attribute__((target("avx2,fma"))) double fma_chunk_avx2(float m, float add) {
  __m256 a0 = _mm256_set1_ps(0.1f), a1 = _mm256_set1_ps(0.2f), a2 = _mm256_set1_ps(0.3f);
  __m256 a3 = _mm256_set1_ps(0.4f), a4 = _mm256_set1_ps(0.5f), a5 = _mm256_set1_ps(0.6f);
  __m256 a6 = _mm256_set1_ps(0.7f), a7 = _mm256_set1_ps(0.8f), a8 = _mm256_set1_ps(0.9f);
  __m256 a9 = _mm256_set1_ps(1.0f), a10 = _mm256_set1_ps(1.1f), a11 = _mm256_set1_ps(1.2f);
  const __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(add);
  for (int64_t i = 0; i < kChunk; i++) {
    a0 = _mm256_fmadd_ps(a0, vm, va), a1 = _mm256_fmadd_ps(a1, vm, va), a2 = _mm256_fmadd_ps(a2, vm, va);
    a3 = _mm256_fmadd_ps(a3, vm, va), a4 = _mm256_fmadd_ps(a4, vm, va), a5 = _mm256_fmadd_ps(a5, vm, va);
    a6 = _mm256_fmadd_ps(a6, vm, va), a7 = _mm256_fmadd_ps(a7, vm, va), a8 = _mm256_fmadd_ps(a8, vm, va);
    a9 = _mm256_fmadd_ps(a9, vm, va), a10 = _mm256_fmadd_ps(a10, vm, va), a11 = _mm256_fmadd_ps(a11, vm, va);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}
constexpr double kFlopsAvx2 = 12.0 * 8 * 2 * kChunk;

// The same with 512-bit vectors (12 chains × 16 lanes); only run when isa() == avx512.
__attribute__((target("avx512f"))) double fma_chunk_avx512(float m, float add) {
  __m512 a[12];
  for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps(0.1f * (j + 1));
  const __m512 vm = _mm512_set1_ps(m), va = _mm512_set1_ps(add);
  for (int64_t i = 0; i < kChunk; i++)
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], vm, va);
  __m512 s = a[0];
  for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0];
}
constexpr double kFlopsAvx512 = 12.0 * 16 * 2 * kChunk;

std::atomic<double> g_sink{0};

// Every task runs short chunks until a shared deadline and keeps its fastest chunk. The machine is
// shared, so the best chunk (about 0.2 ms, inside one scheduler slice) is the core's own rate; the peak
// of t threads is the sum of their best rates (cores have separate FMA pipes), which is the hardware
// number a kernel is measured against even when a measurement moment is noisy.
double measure(int threads, double seconds, float m, float add) {
  const bool wide = isa() == Isa::avx512;
  const double chunk_flops = wide ? kFlopsAvx512 : kFlopsAvx2;
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(seconds);
  std::vector<double> best(threads, 0.0);
  parallel_tasks(threads, [&](int64_t t) {
    double sink = 0;
    for (auto now = clock::now(); now < deadline;) {
      sink += wide ? fma_chunk_avx512(m, add) : fma_chunk_avx2(m, add);
      const auto after = clock::now();
      best[t] = std::max(best[t], chunk_flops / std::chrono::duration<double>(after - now).count());
      now = after;
    }
    g_sink = g_sink + sink;
  });
  double total = 0;
  for (double b : best) total += b;
  return total * 1e-9;
}

// peakGflops(threads, seconds): measured fp32 FMA GFLOP/s on `threads` threads (<= numThreads()).
Napi::Value js_peak_gflops(const Napi::CallbackInfo& info) {
  Args a(info, "peakGflops", 2);
  const int64_t threads = a.i64(0);
  const double seconds = a.f64(1);
  a.require(threads >= 1 && threads <= num_threads(),
            "threads must be in [1, numThreads()=" + std::to_string(num_threads()) + "], got " +
                std::to_string(threads));
  a.require(seconds > 0 && seconds <= 10, "seconds must be in (0, 10]");
  // The multiplier and addend are runtime values so the compiler cannot fold the chains.
  const float m = static_cast<float>(0.999 + 1e-4 * (threads % 3)), add = 1e-3f;
  measure(static_cast<int>(threads), seconds * 0.25, m, add);  // let the clock ramp up
  return Napi::Number::New(info.Env(), measure(static_cast<int>(threads), seconds, m, add));
}

// Sum of a[0, n) in four independent chains (n a multiple of 32): a plain front-to-back read.
__attribute__((target("avx2,fma"))) float read_sum(const float* a, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i < n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return out[0];
}

// readGBps(a, passes): one thread reads the Float32Array a front to back `passes` times; the fastest
// pass's GB/s. With a several times the last-level cache, the core's memory read bandwidth: the floor
// for kernels that stream their operands once (the decode step's weights and KV cache).
Napi::Value js_read_gbps(const Napi::CallbackInfo& info) {
  Args a(info, "readGBps", 2);
  const float* buf = a.f32(0, 32);
  const int64_t n = static_cast<int64_t>(info[0].As<Napi::TypedArray>().ElementLength()) & ~int64_t(31);
  const int64_t passes = a.i64(1);
  a.require(passes >= 1 && passes <= 100, "passes must be in [1, 100]");
  using clock = std::chrono::steady_clock;
  double best = 0, sink = 0;
  for (int64_t p = 0; p < passes; p++) {
    const auto t0 = clock::now();
    sink += read_sum(buf, n);
    best = std::max(best, 4.0 * n / std::chrono::duration<double>(clock::now() - t0).count());
  }
  g_sink = g_sink + sink;
  return Napi::Number::New(info.Env(), best * 1e-9);
}

}  // namespace

REFRAG_EXPORT("peakGflops", js_peak_gflops);
REFRAG_EXPORT("readGBps", js_read_gbps);

}  // namespace refrag
