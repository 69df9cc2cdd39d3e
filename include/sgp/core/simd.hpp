#pragma once
// The one place that includes xsimd. Kernels use sgp::simd::vec (the widest float batch the
// compiler targets: AVX-512, AVX2, SSE, NEON, or a scalar fallback when none is enabled).
#if defined(SGP_NO_SIMD)
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
    return vec(a.v * b.v + c.v);
}
inline vec relu(vec a) {
    return vec(a.v > 0.f ? a.v : 0.f);
}
inline float hadd(vec a) {
    return a.v;
}
inline constexpr const char* arch_name = "scalar";
}  // namespace sgp::simd
#else
#include <xsimd/xsimd.hpp>
namespace sgp::simd {
using vec = xsimd::batch<float>;
using xsimd::fma;
using xsimd::hadd;
// max(x, 0) as a select: GCC 12 warns falsely inside _mm512_max_ps.
inline vec relu(vec a) {
    return xsimd::select(a > vec(0.f), a, vec(0.f));
}
inline const char* const arch_name = xsimd::default_arch::name();
}  // namespace sgp::simd
#endif

namespace sgp::simd {
inline constexpr std::size_t width = vec::size;
}
