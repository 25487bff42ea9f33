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

// The first n (<= 8) values, the other lanes zero, through a zeroed buffer (AVX2 has no masked 16-bit load;
// the tails of shapes that are not multiples of 8, never the shipped ones).
template <typename T>
__attribute__((target("avx2,fma"))) inline __m256 load8_part(const T* p, int n) {
  T buf[8] = {};
  std::memcpy(buf, p, n * sizeof(T));
  return load8(buf);
}

__attribute__((target("avx512f,avx2,fma"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f,avx2,fma"))) inline __m512 load16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

}  // namespace refrag
