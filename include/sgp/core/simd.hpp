#pragma once
// The one place that includes xsimd. Kernels use sgp::simd::vec (the widest float batch the
// compiler targets: AVX-512, AVX2, SSE, NEON, or a scalar fallback when none is enabled).
#if defined(SGP_NO_SIMD)
#include <cmath>
#include <cstddef>
namespace sgp::simd {
// Scalar stand-in with the few operations the kernels use.
struct vec {
    static constexpr std::size_t size = 1;
    float v;
    vec() = default;
    vec(float x) : v(x) {}
    static vec load_aligned(const float* p) { return vec(*p); }
    static vec load_unaligned(const float* p) { return vec(*p); }
    void store_aligned(float* p) const { *p = v; }
    void store_unaligned(float* p) const { *p = v; }
    friend vec operator+(vec a, vec b) { return vec(a.v + b.v); }
    friend vec operator-(vec a, vec b) { return vec(a.v - b.v); }
    friend vec operator*(vec a, vec b) { return vec(a.v * b.v); }
    vec& operator+=(vec b) {
        v += b.v;
        return *this;
    }
};
inline vec fma(vec a, vec b, vec c) {
    return vec(std::fma(a.v, b.v, c.v));  // fused, as every vector unit does
}
inline vec relu(vec a) {
    return vec(a.v > 0.f ? a.v : 0.f);
}
inline vec relu6(vec a) {
    return vec(a.v > 0.f ? (a.v < 6.f ? a.v : 6.f) : 0.f);
}
inline float hadd(vec a) {
    return a.v;
}
inline constexpr const char* arch_name = "scalar";
}  // namespace sgp::simd
#else
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
namespace sgp::simd {
using vec = xsimd::batch<float>;
using xsimd::hadd;
// A fused multiply-add on every target. xsimd 8.1 has no AVX-512 fma (its generic one is
// x * y + z, fused or not as the compiler's contraction decides, which differs between -O1
// and -O2): every path that must agree bit for bit (a fused epilogue and the unfused layers,
// vector lanes and scalar tails) relies on one rounding.
inline vec fma(vec a, vec b, vec c) {
#if defined(__AVX512F__)
    if constexpr (vec::size == 16) return vec(_mm512_fmadd_ps(a, b, c));
#endif
    return xsimd::fma(a, b, c);
}
// max(x, 0) as a select: GCC 12 warns falsely inside _mm512_max_ps.
inline vec relu(vec a) {
    return xsimd::select(a > vec(0.f), a, vec(0.f));
}
// min(max(x, 0), 6) by the same selects (NaN gives 0, as relu).
inline vec relu6(vec a) {
    return xsimd::select(a > vec(0.f), xsimd::select(a < vec(6.f), a, vec(6.f)), vec(0.f));
}
inline const char* const arch_name = xsimd::default_arch::name();
}  // namespace sgp::simd
#endif

namespace sgp::simd {
inline constexpr std::size_t width = vec::size;
// The scalar twin of relu6(vec): the same comparisons, so vector lanes and tails agree.
inline float relu6(float a) {
    return a > 0.f ? (a < 6.f ? a : 6.f) : 0.f;
}
}  // namespace sgp::simd

// Full unrolling of a register tile's loops (the accumulators must stay in registers). Left
// out under AddressSanitizer, where it multiplies compile time for no benefit.
#define SGP_PRAGMA(x) _Pragma(#x)
#if defined(__SANITIZE_ADDRESS__)
#define SGP_UNROLL(n)
#else
#define SGP_UNROLL(n) SGP_PRAGMA(GCC unroll n)
#endif
