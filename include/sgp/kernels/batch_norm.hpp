#pragma once
// Batch normalisation over one channel's contiguous run of N*H*W values (the channel-major
// layout makes every channel one contiguous array). Statistics are summed in double: a
// channel of a batch holds up to millions of values.
#include <cmath>
#include <cstddef>

#include "sgp/core/simd.hpp"

namespace sgp::kernels {

struct bn_stats {
    float mean, var;  // biased variance, as used for normalising
};

inline bn_stats bn_channel_stats(const float* x, std::size_t len) {
    double s = 0;
    for (std::size_t i = 0; i < len; ++i) s += x[i];
    const double mean = s / static_cast<double>(len);
    double v = 0;
    for (std::size_t i = 0; i < len; ++i) {
        const double d = x[i] - mean;
        v += d * d;
    }
    return {static_cast<float>(mean), static_cast<float>(v / static_cast<double>(len))};
}

// y = x * scale + shift, vectorised.
inline void scale_shift(const float* x, float* y, std::size_t len, float scale, float shift) {
    using simd::vec;
    const vec a(scale), b(shift);
    std::size_t i = 0;
    for (; i + simd::width <= len; i += simd::width) simd::fma(vec::load_unaligned(x + i), a, b).store_unaligned(y + i);
    for (; i < len; ++i) y[i] = x[i] * scale + shift;
}

// Backward of y = gamma * (x - mean) * invstd + beta over one channel, given the batch
// statistics. Writes dx and returns (dgamma, dbeta).
inline void bn_channel_backward(const float* x, const float* dy, float* dx, std::size_t len, float mean, float invstd,
                                float gamma, float& dgamma, float& dbeta) {
    double sdy = 0, sdyx = 0;
    for (std::size_t i = 0; i < len; ++i) {
        sdy += dy[i];
        sdyx += static_cast<double>(dy[i]) * (x[i] - mean);
    }
    dbeta = static_cast<float>(sdy);
    dgamma = static_cast<float>(sdyx * invstd);
    if (!dx) return;
    const double n = static_cast<double>(len);
    // dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy*xhat))
    const float k = gamma * invstd, mdy = static_cast<float>(sdy / n),
                c = static_cast<float>(sdyx * invstd * invstd / n);
    for (std::size_t i = 0; i < len; ++i) dx[i] = k * (dy[i] - mdy - (x[i] - mean) * c);
}

}  // namespace sgp::kernels
