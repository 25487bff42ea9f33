// Internals shared by the packed GEMM's instruction-set variants (gemm.cc: AVX2 6×16, gemm_avx512.cc:
// AVX-512 12×32). Not an API: other kernels use gemm.h.
#pragma once
#include <cstdint>
#include <cstdlib>

namespace refrag {

// Packing buffers per thread (pool workers live for the process, so these are reused). `slack` floats
// past the request let a pack routine write whole vectors at the end of the last panel.
struct Buffer {
  float* p = nullptr;
  size_t n = 0;
  float* get(size_t need) {
    if (need > n) {
      std::free(p);
      n = need;
      p = static_cast<float*>(std::aligned_alloc(64, ((need + kSlack) * sizeof(float) + 63) / 64 * 64));
    }
    return p;
  }
  ~Buffer() { std::free(p); }
  static constexpr size_t kSlack = 16;
};
inline thread_local Buffer t_apack, t_bpack;

// The AVX-512 path (gemm_avx512.cc, which reads the addon's ISA switch, isa() == Isa::avx512). Weak:
// plain C++ tools that link gemm.cc without the addon (tools/blas) see null here and run AVX2.
bool gemm_avx512_on() __attribute__((weak));
// One thread's share of C = alpha · op(A) · op(B) + beta · C, as gemm_serial in gemm.cc.
void gemm_serial_avx512(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) __attribute__((weak));
void gemm_serial_avx512(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) __attribute__((weak));
constexpr int kMR512 = 12, kNR512 = 32;  // the AVX-512 micro-tile, for splitting work between threads

}  // namespace refrag
