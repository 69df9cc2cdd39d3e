#pragma once
// Batch normalisation over one channel's contiguous run of N*H*W values (the channel-major
// layout makes every channel one contiguous array). A channel of a batch holds up to
// millions of values: sums run in float vectors over blocks of 1024 values (64 per lane on
// AVX-512) and the block sums add up in double, as accurate as a double loop and vectorised.
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "sgp/core/simd.hpp"

namespace sgp::kernels {

struct bn_stats {
    float mean, var;  // biased variance, as used for normalising
};

namespace detail {
// Adds, for every term t of [0, len), vector_term(i) (simd::width terms from i) or
// scalar_term(i) into `parts` sums: float within blocks of 1024, double across blocks.
template <std::size_t Parts, class V, class S>
void blocked_sums(std::size_t len, double (&sums)[Parts], V&& vector_term, S&& scalar_term) {
    constexpr std::size_t block = 1024;
    for (std::size_t b = 0; b < len; b += block) {
        const std::size_t e = std::min(len, b + block);
        simd::vec acc[Parts];
        for (auto& a : acc) a = simd::vec(0.f);
        std::size_t i = b;
        for (; i + simd::width <= e; i += simd::width) vector_term(i, acc);
        float tail[Parts] = {};
        for (; i < e; ++i) scalar_term(i, tail);
        for (std::size_t p = 0; p < Parts; ++p) sums[p] += static_cast<double>(simd::hadd(acc[p])) + tail[p];
    }
}
}  // namespace detail

inline bn_stats bn_channel_stats(const float* x, std::size_t len) {
    using simd::vec;
    double s[1] = {0};
    detail::blocked_sums(
        len, s, [&](std::size_t i, vec* a) { a[0] += vec::load_unaligned(x + i); },
        [&](std::size_t i, float* t) { t[0] += x[i]; });
    const float mean = static_cast<float>(s[0] / static_cast<double>(len));
    double v[1] = {0};
    const vec m(mean);
    detail::blocked_sums(
        len, v,
        [&](std::size_t i, vec* a) {
            const vec d = vec::load_unaligned(x + i) - m;
            a[0] = simd::fma(d, d, a[0]);
        },
        [&](std::size_t i, float* t) { t[0] += (x[i] - mean) * (x[i] - mean); });
    return {mean, static_cast<float>(v[0] / static_cast<double>(len))};
}

// y = x * scale + shift, vectorised.
inline void scale_shift(const float* x, float* y, std::size_t len, float scale, float shift) {
    using simd::vec;
    const vec a(scale), b(shift);
    std::size_t i = 0;
    for (; i + simd::width <= len; i += simd::width) simd::fma(vec::load_unaligned(x + i), a, b).store_unaligned(y + i);
    for (; i < len; ++i) y[i] = std::fma(x[i], scale, shift);  // as the vector part: fused
}

// Backward of y = gamma * (x - mean) * invstd + beta over one channel, given the batch
// statistics. Writes dx and returns (dgamma, dbeta).
inline void bn_channel_backward(const float* x, const float* dy, float* dx, std::size_t len, float mean, float invstd,
                                float gamma, float& dgamma, float& dbeta) {
    using simd::vec;
    double sums[2] = {0, 0};
    const vec m(mean);
    detail::blocked_sums(
        len, sums,
        [&](std::size_t i, vec* a) {
            const vec g = vec::load_unaligned(dy + i);
            a[0] += g;
            a[1] = simd::fma(g, vec::load_unaligned(x + i) - m, a[1]);
        },
        [&](std::size_t i, float* t) {
            t[0] += dy[i];
            t[1] += dy[i] * (x[i] - mean);
        });
    const double sdy = sums[0], sdyx = sums[1];
    dbeta = static_cast<float>(sdy);
    dgamma = static_cast<float>(sdyx * invstd);
    if (!dx) return;
    const double n = static_cast<double>(len);
    // dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy*xhat))
    const float k = gamma * invstd, mdy = static_cast<float>(sdy / n),
                c = static_cast<float>(sdyx * invstd * invstd / n);
    const vec vk(k), vmdy(mdy), vc(c);
    std::size_t i = 0;
    for (; i + simd::width <= len; i += simd::width)
        (vk * (vec::load_unaligned(dy + i) - vmdy - (vec::load_unaligned(x + i) - m) * vc)).store_unaligned(dx + i);
    for (; i < len; ++i) dx[i] = k * (dy[i] - mdy - (x[i] - mean) * c);
}

}  // namespace sgp::kernels
