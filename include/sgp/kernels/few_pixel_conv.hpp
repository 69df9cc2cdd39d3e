#pragma once
// Convolution of a few output pixels (a deep layer at batch 1: a 4x4 or 2x2 map), vectorised
// over output channels rather than over pixels. Such a layer has hundreds of thousands of
// weights and a handful of pixels: each weight is used by at most 16 multiply-adds, so the
// weights must stream through once with every load feeding all pixels, and nothing may be
// spent on forming a column matrix for 16 columns.
//
// The input is the zero-padded copy of direct_conv (kernels/direct_conv.hpp). A tile holds P
// pixels x V vectors of output channels in registers; per tap it loads V weight vectors and
// broadcasts one input value per pixel. Weights are packed [M / W][C * K * K][W].
#include <algorithm>
#include <cstddef>
#include <string>

#include "sgp/core/error.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"
#include "sgp/kernels/direct_conv.hpp"

namespace sgp::kernels {

namespace few_pixel_detail {
// Accumulator registers per tile: half of AVX-512's 32, the rest hold weights and broadcasts.
inline constexpr std::size_t accumulators = simd::width >= 16 ? 16 : 8;
inline constexpr std::size_t min_pixels = 4;  // the smallest tile; fewer pixels are padded to it
inline constexpr std::size_t max_vectors = accumulators / min_pixels;
}  // namespace few_pixel_detail

// Pixels up to which few_pixel_conv applies.
inline constexpr std::size_t few_pixel_limit = few_pixel_detail::accumulators;

// Floats of the packed weights for m output channels (rounded up to the widest tile).
inline std::size_t few_pixel_weights_size(std::size_t m, std::size_t c, std::size_t k) {
    return direct_detail::round_up(m, few_pixel_detail::max_vectors * simd::width) * c * k * k;
}
// Weights [M][C][K][K] into [M / W][C * K * K][W], zero padded to few_pixel_weights_size.
inline void pack_few_pixel_weights(const float* w, std::size_t m, std::size_t c, std::size_t k, float* out) {
    constexpr std::size_t W = simd::width;
    const std::size_t taps = c * k * k, padded = direct_detail::round_up(m, few_pixel_detail::max_vectors * W);
    for (std::size_t b = 0; b < padded; b += W)
        for (std::size_t t = 0; t < taps; ++t)
            for (std::size_t j = 0; j < W; ++j) *out++ = b + j < m ? w[(b + j) * taps + t] : 0.f;
}

namespace few_pixel_detail {

// P pixels (input offsets `off` on the padded map) x V vectors of output channels, whose
// weights are V streams `ws` floats apart from w. out: [P][V * W].
template <std::size_t P, std::size_t V, std::size_t K>
[[gnu::noinline]] void tile(const float* xpad, std::size_t xs, std::size_t channels, std::size_t wp,
                            const std::size_t* off, const float* w, std::size_t ws, float* out) {
    using simd::vec;
    constexpr std::size_t W = simd::width;
    vec acc[P][V];
    SGP_UNROLL(16)
    for (std::size_t i = 0; i < P; ++i) {
        SGP_UNROLL(4)
        for (std::size_t v = 0; v < V; ++v) acc[i][v] = vec(0.f);
    }
    for (std::size_t c = 0; c < channels; ++c) {
        const float* xc = xpad + c * xs;
        for (std::size_t ky = 0; ky < K; ++ky)
            for (std::size_t kx = 0; kx < K; ++kx, w += W) {
                const float* s = xc + ky * wp + kx;
                vec wv[V];
                SGP_UNROLL(4)
                for (std::size_t v = 0; v < V; ++v) wv[v] = vec::load_unaligned(w + v * ws);
                SGP_UNROLL(16)
                for (std::size_t i = 0; i < P; ++i) {
                    const vec b(s[off[i]]);
                    SGP_UNROLL(4)
                    for (std::size_t v = 0; v < V; ++v) acc[i][v] = simd::fma(b, wv[v], acc[i][v]);
                }
            }
    }
    SGP_UNROLL(16)
    for (std::size_t i = 0; i < P; ++i) {
        SGP_UNROLL(4)
        for (std::size_t v = 0; v < V; ++v) acc[i][v].store_unaligned(out + (i * V + v) * W);
    }
}

template <std::size_t P, std::size_t K>
void run(const direct_geometry& g, const float* xpad, const float* wpk, std::size_t m, const std::size_t* off,
         std::size_t pixels, float* y, const conv_epilogue& e, thread_pool* pool) {
    constexpr std::size_t V = accumulators / P, B = V * simd::width;
    const std::size_t ws = g.c * K * K * simd::width;
    parallel_for(pool, (m + B - 1) / B, 1, [&](std::size_t b0, std::size_t b1) {
        alignas(64) float out[P * B];
        for (std::size_t b = b0; b < b1; ++b) {
            tile<P, V, K>(xpad, g.in_stride(), g.c, g.wp(), off, wpk + b * V * ws, ws, out);
            const std::size_t o0 = b * B, o1 = std::min(m, o0 + B);
            for (std::size_t o = o0; o < o1; ++o) {
                const auto f = e.of(o);
                for (std::size_t i = 0; i < pixels; ++i) y[o * pixels + i] = f(out[i * B + o - o0]);
            }
        }
    });
}

}  // namespace few_pixel_detail

// y[M][N][Oh][Ow] = epilogue(conv(x, W)) for a stride-1 convolution with K x K kernels and at
// most few_pixel_limit output pixels in all (N * Oh * Ow). wpk: the weights packed by
// pack_few_pixel_weights; xpad: scratch of g.input_floats() floats.
template <std::size_t K>
void few_pixel_conv(const direct_geometry& g, const float* x, const float* wpk, std::size_t m, float* xpad, float* y,
                    const conv_epilogue& e, thread_pool* pool) {
    using namespace few_pixel_detail;
    const std::size_t oh = g.oh(), ow = g.ow(), pixels = g.n * oh * ow;
    if (pixels > few_pixel_limit)
        fail("few_pixel_conv", std::to_string(pixels) + " output pixels, at most " + std::to_string(few_pixel_limit));
    pad_input(g, x, xpad, pool);
    // Where each pixel's window starts on the padded map; a tile's spare pixels repeat pixel 0.
    std::size_t off[accumulators] = {};
    for (std::size_t p = 0; p < pixels; ++p) off[p] = (p / (oh * ow) * g.hp() + p / ow % oh) * g.wp() + p % ow;
    if (pixels <= 4)
        run<4, K>(g, xpad, wpk, m, off, pixels, y, e, pool);
    else if (pixels <= 8 || accumulators < 16)
        run<8, K>(g, xpad, wpk, m, off, pixels, y, e, pool);
    else
        run<accumulators, K>(g, xpad, wpk, m, off, pixels, y, e, pool);
}

}  // namespace sgp::kernels
