// Argument checks for the kernel bindings: exact integers within limits, and sizes multiplied in 64 bits
// with overflow detection, so a product can never wrap to a small number that passes a length check.
// Every failure throws a JS TypeError that names the op, the argument and the value (never aborts).
// The TypeScript side (src/engine/kernels/checks.ts) applies the same rules before each call.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "common.h"

namespace refrag {

// Largest value of any one size argument (rows, heads, tokens, …): the int32 range, as the TypeScript side.
constexpr int64_t kMaxDim = 2147483647;

// A double as written in an error: integers without a fraction, everything else with %g.
inline std::string num_str(double v) {
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e18) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Argument i as an exact integer in [lo, hi] (NaN, fractions and out-of-range values throw).
inline int64_t int_arg(const Args& a, size_t i, const char* name, int64_t lo, int64_t hi) {
  const double v = a.f64(i);
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) || std::floor(v) != v)
    fail(a.env(), a.op,
         std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
             "], got " + num_str(v));
  return static_cast<int64_t>(v);
}

// A size argument: an integer in [min, kMaxDim].
inline int64_t dim_arg(const Args& a, size_t i, const char* name, int64_t min = 0) {
  return int_arg(a, i, name, min, kMaxDim);
}

// Argument i as a finite number (NaN and ±Inf throw).
inline double finite_arg(const Args& a, size_t i, const char* name) {
  const double v = a.f64(i);
  if (!std::isfinite(v)) fail(a.env(), a.op, std::string(name) + " must be a finite number, got " + num_str(v));
  return v;
}

// The product of sizes, or a throw naming `what` when it does not fit in 64 bits.
inline int64_t checked_product(const Args& a, std::initializer_list<int64_t> sizes, const std::string& what) {
  int64_t p = 1;
  for (int64_t s : sizes)
    if (__builtin_mul_overflow(p, s, &p)) fail(a.env(), a.op, "size of " + what + " overflows 64 bits");
  return p;
}

}  // namespace refrag
