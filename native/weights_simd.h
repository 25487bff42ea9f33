// Loading weight values that may be f32 or bf16 (the upper half of an f32), for the GEMM and GEMV loops
// that are templated on the weight type. bf16 widens exactly: zero-extend to 32 bits, shift left by 16.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace refrag {

inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace refrag
