#pragma once
// The geometry of the direct convolutions (kernels/direct_conv.hpp, small_map_conv.hpp,
// few_pixel_conv.hpp, direct_weight_grad.hpp) and their packed weights: blocks of R output
// channels, a tile's weight broadcasts at consecutive floats.
#include <cstddef>

#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"

namespace sgp::kernels {

namespace direct_detail {
// Output channels per register tile: 8 x 3 accumulators fit AVX-512's 32 registers with the
// inputs; 4 x 3 fit the 16 of AVX2 (NEON has 32, but 4-wide vectors want more positions).
inline constexpr std::size_t R = simd::width >= 16 ? 8 : 4;
inline constexpr std::size_t max_vectors = 3;
constexpr std::size_t round_up(std::size_t x, std::size_t m) {
    return (x + m - 1) / m * m;
}
}  // namespace direct_detail

struct direct_geometry {
    std::size_t n, c, h, w;  // batch, active input channels, input map
    std::size_t k, pad;      // square kernel, zero padding; stride 1
    std::size_t hp() const { return h + 2 * pad; }
    std::size_t wp() const { return w + 2 * pad; }
    std::size_t oh() const { return hp() - k + 1; }
    std::size_t ow() const { return wp() - k + 1; }
    // Positions computed: up to the last output row of the last image (the rows below it,
    // padding of the last image, feed no output).
    std::size_t positions() const { return ((n - 1) * hp() + oh()) * wp(); }
    // Floats per padded input channel: the map, plus the taps of the last (rounded up) vector.
    std::size_t in_stride() const { return direct_detail::round_up(n * hp() * wp() + k + simd::width, simd::width); }
    // Floats per output channel in the position domain.
    std::size_t out_stride() const { return direct_detail::round_up(positions(), simd::width); }
    // Scratch floats: the padded input and the outputs of m channels (rounded up to R).
    std::size_t input_floats() const { return c * in_stride(); }
    std::size_t output_floats(std::size_t m) const {
        return direct_detail::round_up(m, direct_detail::R) * out_stride();
    }
};

// Floats of the packed weights for m output channels.
inline std::size_t direct_weights_size(std::size_t m, std::size_t c, std::size_t k) {
    return direct_detail::round_up(m, direct_detail::R) * c * k * k;
}
// Weights [M][C][K][K] into [M / R][C * K * K][R], the last block zero padded. Threads take
// blocks: the 2x2 and 4x4 layers of VGG hold 9.4 MB of weights, packed on every training pass.
inline void pack_direct_weights(const float* w, std::size_t m, std::size_t c, std::size_t k, float* out,
                                thread_pool* pool = nullptr) {
    constexpr std::size_t R = direct_detail::R;
    const std::size_t taps = c * k * k;
    parallel_for(pool, (m + R - 1) / R, 1, [&](std::size_t b0, std::size_t b1) {
        for (std::size_t bi = b0; bi < b1; ++bi) {
            const std::size_t b = bi * R, rows = m - b < R ? m - b : R;
            float* o = out + bi * taps * R;
            if (rows == R) {
                for (std::size_t t = 0; t < taps; ++t, o += R)
                    for (std::size_t r = 0; r < R; ++r) o[r] = w[(b + r) * taps + t];
            } else {
                for (std::size_t t = 0; t < taps; ++t, o += R)
                    for (std::size_t r = 0; r < R; ++r) o[r] = r < rows ? w[(b + r) * taps + t] : 0.f;
            }
        }
    });
}

// The data gradient of a stride-1, same-padded convolution is the convolution of dY with the
// weights turned around, W'[c][o][ky][kx] = W[o][c][K-1-ky][K-1-kx]: its packed weights
// straight from W ([M][C][K][K]), for C output channels over M input channels.
inline void pack_direct_weights_flipped(const float* w, std::size_t m, std::size_t c, std::size_t k, float* out,
                                        thread_pool* pool = nullptr) {
    constexpr std::size_t R = direct_detail::R;
    const std::size_t kk = k * k;
    parallel_for(pool, (c + R - 1) / R, 1, [&](std::size_t b0, std::size_t b1) {
        for (std::size_t bi = b0; bi < b1; ++bi) {
            const std::size_t b = bi * R, rows = c - b < R ? c - b : R;
            float* dst = out + bi * m * kk * R;
            for (std::size_t o = 0; o < m; ++o) {
                const float* src = w + (o * c + b) * kk;  // input channel b + r at r * kk
                for (std::size_t i = 0; i < kk; ++i, dst += R) {
                    const std::size_t tap = kk - 1 - i;
                    if (rows == R)
                        for (std::size_t r = 0; r < R; ++r) dst[r] = src[r * kk + tap];
                    else
                        for (std::size_t r = 0; r < R; ++r) dst[r] = r < rows ? src[r * kk + tap] : 0.f;
                }
            }
        }
    });
}

}  // namespace sgp::kernels
