// One GEMM implementation on the kernel benchmark's shapes, for a side-by-side with the system BLAS
// libraries. Built three ways by run.mjs: with refrag's own native/gemm.cc (-DOURS) or linked against
// Debian's OpenBLAS or BLIS (cblas). Prints one JSON object per shape: median and best GFLOP/s.
// The libraries run in separate processes, so a library's idle spinning threads never steal a core
// from another's measurement.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#ifdef OURS
#include "gemm.h"
#include "pool.h"
#else
extern "C" void cblas_sgemm(int order, int transA, int transB, int M, int N, int K, float alpha, const float* A,
                            int lda, const float* B, int ldb, float beta, float* C, int ldc);
#endif

struct Shape {
  int M, N, K;
  bool tA, tB;
};

#ifdef PEAK
#include <immintrin.h>

#include <thread>

// Twelve independent FMA chains per thread: the most FLOP/s the cores give at this moment.
__attribute__((target("avx2,fma"))) float fma_chains(long n) {
  __m256 a[12];
  for (int j = 0; j < 12; j++) a[j] = _mm256_set1_ps(0.1f * j);
  const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
  for (long i = 0; i < n; i++)
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], m, c);
  float s = 0;
  for (int j = 0; j < 12; j++) s += a[j][0];
  return s;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const long n = 1000000;  // ~2.5 ms per run
  std::vector<double> rates;
  for (int r = 0; r < 200; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) ts.emplace_back([&] { volatile float s = fma_chains(n); (void)s; });
    for (auto& t : ts) t.join();
    rates.push_back(threads * n * 12 * 16 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("{\"M\":0,\"N\":0,\"K\":0,\"tA\":false,\"tB\":false,\"median\":%.2f,\"best\":%.2f}\n",
              rates[rates.size() / 2], rates.back());
}
#else
int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
#ifdef OURS
  refrag::set_num_threads(threads);
#endif
  const std::vector<Shape> shapes = {{512, 512, 512, false, false},    {2048, 256, 768, false, false},
                                     {2048, 256, 768, false, true},    {2048, 256, 768, true, false},
                                     {16384, 256, 256, false, false}};
  std::mt19937 gen(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Shape& s : shapes) {
    std::vector<float> A(static_cast<size_t>(s.M) * s.K), B(static_cast<size_t>(s.K) * s.N), C(static_cast<size_t>(s.M) * s.N);
    for (float& x : A) x = dist(gen);
    for (float& x : B) x = dist(gen);
    const int lda = s.tA ? s.M : s.K, ldb = s.tB ? s.K : s.N;
    const double flops = 2.0 * s.M * s.N * s.K;
    const int repeats = std::max(7, std::min(200, static_cast<int>(5e10 / flops)));
    std::vector<double> t;
    for (int r = 0; r < repeats + 3; r++) {
      const auto t0 = std::chrono::steady_clock::now();
#ifdef OURS
      refrag::sgemm(s.tA, s.tB, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.N, threads);
#else
      cblas_sgemm(101, s.tA ? 112 : 111, s.tB ? 112 : 111, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                  C.data(), s.N);
#endif
      const auto t1 = std::chrono::steady_clock::now();
      if (r >= 3) t.push_back(std::chrono::duration<double>(t1 - t0).count());
    }
    std::sort(t.begin(), t.end());
    std::printf("{\"M\":%d,\"N\":%d,\"K\":%d,\"tA\":%s,\"tB\":%s,\"median\":%.2f,\"best\":%.2f}\n", s.M, s.N, s.K,
                s.tA ? "true" : "false", s.tB ? "true" : "false", flops / t[t.size() / 2] / 1e9, flops / t[0] / 1e9);
  }
}
#endif
