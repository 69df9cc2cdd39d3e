#pragma once
// Copies and fills of short runs (a row of a small feature map), inline and vectorised.
#include <cstddef>

#include "sgp/core/simd.hpp"

namespace sgp::kernels {

namespace detail {
// Short copies and fills, inline: a library call per run of a few floats costs more than the
// run. A ragged end is one more vector overlapping the previous one, not a scalar loop.
inline void copy_short(const float* src, std::size_t n, float* dst) {
    constexpr std::size_t W = simd::width;
    if (n < W) {
        for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
        return;
    }
    for (std::size_t i = 0; i + W <= n; i += W) simd::vec::load_unaligned(src + i).store_unaligned(dst + i);
    if (n % W) simd::vec::load_unaligned(src + n - W).store_unaligned(dst + n - W);
}
inline void zero_short(float* dst, std::size_t n) {
    constexpr std::size_t W = simd::width;
    if (n < W) {
        for (std::size_t i = 0; i < n; ++i) dst[i] = 0.f;
        return;
    }
    for (std::size_t i = 0; i + W <= n; i += W) simd::vec(0.f).store_unaligned(dst + i);
    if (n % W) simd::vec(0.f).store_unaligned(dst + n - W);
}
}  // namespace detail

}  // namespace sgp::kernels
