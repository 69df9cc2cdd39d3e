#pragma once
// ReLU and its backward on contiguous memory.
#include <cstddef>

#include "sgp/core/simd.hpp"

namespace sgp::kernels {

inline void relu(const float* x, float* y, std::size_t len) {
    using simd::vec;
    std::size_t i = 0;
    for (; i + simd::width <= len; i += simd::width) simd::relu(vec::load_unaligned(x + i)).store_unaligned(y + i);
    for (; i < len; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

// dx = dy where the output was positive, else 0.
inline void relu_backward(const float* y, const float* dy, float* dx, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

}  // namespace sgp::kernels
