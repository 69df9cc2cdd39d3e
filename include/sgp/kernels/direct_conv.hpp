#pragma once
// Direct convolution for stride-1 convolutions: no column matrix and no packing of the input,
// which is what narrow layers (8-32 channels) and batch-1 inference spend their time on in
// the GEMM formulation.
//
// The input is copied once into a zero-padded map per channel, [N][Hp][Wp] flattened (plus
// slack). On it, output pixel (n, oy, ox) is position q = (n * Hp + oy) * Wp + ox, and its
// tap (c, ky, kx) is position q + ky * Wp + kx of channel c: the taps of consecutive positions
// are consecutive floats, so every tap of a run of positions is one vector load whatever the
// width of the map. Positions with ox >= Ow or oy >= Oh are computed and dropped; that waste
// (2 * pad of every Wp columns) buys loads without any bounds logic.
//
// Register tile: R output channels x V vectors of positions. Per tap: V loads, R weight
// broadcasts, R * V FMAs; the weights are packed [M / R][C * K * K][R] so the broadcasts read
// consecutive floats. Output channels are padded to a multiple of R with zero weights.
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"
#include "sgp/kernels/copy.hpp"

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

// What follows the convolution, applied while its output is written: y = relu((v + bias) *
// scale + shift), each part optional. With scale/shift of a batch norm in evaluation mode this
// is the fused conv -> batch_norm -> relu; the arithmetic is the unfused layers' own. relu6
// clamps to [0, 6] instead (conv -> batch_norm -> relu6); it is looked at only when relu is
// false, so set one of the two.
struct conv_epilogue {
    const float* bias = nullptr;
    const float* scale = nullptr;
    const float* shift = nullptr;
    bool relu = false;
    bool relu6 = false;

    // The epilogue of one output channel.
    struct channel {
        simd::vec b, a, t;
        float bs, as, ts;
        const conv_epilogue* e;
        simd::vec operator()(simd::vec v) const {
            if (e->bias) v = v + b;
            if (e->scale) v = simd::fma(v, a, t);
            if (e->relu)
                v = simd::relu(v);
            else if (e->relu6)
                v = simd::relu6(v);
            return v;
        }
        float operator()(float v) const {
            if (e->bias) v = v + bs;
            if (e->scale) v = std::fma(v, as, ts);  // fused, as the vector lanes
            if (e->relu)
                v = v > 0.f ? v : 0.f;
            else if (e->relu6)
                v = simd::relu6(v);
            return v;
        }
    };
    channel of(std::size_t m) const {
        const float bs = bias ? bias[m] : 0.f, as = scale ? scale[m] : 1.f, ts = shift ? shift[m] : 0.f;
        return {simd::vec(bs), simd::vec(as), simd::vec(ts), bs, as, ts, this};
    }
    // dst[i] = f(src[i]) for output channel m.
    void apply(std::size_t m, const float* src, float* dst, std::size_t len) const {
        const channel f = of(m);
        std::size_t i = 0;
        for (; i + simd::width <= len; i += simd::width) f(simd::vec::load_unaligned(src + i)).store_unaligned(dst + i);
        for (; i < len; ++i) dst[i] = f(src[i]);
    }
    bool empty() const { return !bias && !scale && !relu && !relu6; }
};

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
// Weights [M][C][K][K] into [M / R][C * K * K][R], the last block zero padded.
inline void pack_direct_weights(const float* w, std::size_t m, std::size_t c, std::size_t k, float* out) {
    constexpr std::size_t R = direct_detail::R;
    const std::size_t taps = c * k * k;
    for (std::size_t b = 0; b < m; b += R)
        for (std::size_t t = 0; t < taps; ++t)
            for (std::size_t r = 0; r < R; ++r) *out++ = b + r < m ? w[(b + r) * taps + t] : 0.f;
}

namespace direct_detail {

// R output channels x V vectors of positions from position q0: x and y point at q0 of
// channel 0 (input) and of the block's first output channel.
template <std::size_t V, std::size_t K>
[[gnu::noinline]] void tile(const float* x, std::size_t xs, std::size_t channels, std::size_t wp, const float* w,
                            float* y, std::size_t ys) {
    using simd::vec;
    constexpr std::size_t W = simd::width;
    vec acc[R][V];
    SGP_UNROLL(8)
    for (std::size_t r = 0; r < R; ++r) {
        SGP_UNROLL(3)
        for (std::size_t v = 0; v < V; ++v) acc[r][v] = vec(0.f);
    }
    for (std::size_t c = 0; c < channels; ++c, x += xs)
        for (std::size_t ky = 0; ky < K; ++ky)
            for (std::size_t kx = 0; kx < K; ++kx, w += R) {
                const float* s = x + ky * wp + kx;
                vec in[V];
                SGP_UNROLL(3)
                for (std::size_t v = 0; v < V; ++v) in[v] = vec::load_unaligned(s + v * W);
                SGP_UNROLL(8)
                for (std::size_t r = 0; r < R; ++r) {
                    const vec b(w[r]);
                    SGP_UNROLL(3)
                    for (std::size_t v = 0; v < V; ++v) acc[r][v] = simd::fma(b, in[v], acc[r][v]);
                }
            }
    SGP_UNROLL(8)
    for (std::size_t r = 0; r < R; ++r) {
        SGP_UNROLL(3)
        for (std::size_t v = 0; v < V; ++v) acc[r][v].store_unaligned(y + r * ys + v * W);
    }
}

// Tiles of V vectors of positions from `first`, over every channel block.
template <std::size_t V, std::size_t K>
void tiles(const direct_geometry& g, const float* xpad, const float* wpk, std::size_t m, std::size_t first,
           std::size_t count, float* ypad, thread_pool* pool) {
    constexpr std::size_t T = V * simd::width;
    const std::size_t blocks = (m + R - 1) / R, xs = g.in_stride(), ys = g.out_stride(), taps = g.c * K * K;
    // Tile-major: a thread's input window stays in cache while it runs every channel block.
    parallel_for(pool, count * blocks, blocks, [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) {
            const std::size_t q = first + i / blocks * T, b = i % blocks;
            tile<V, K>(xpad + q, xs, g.c, g.wp(), wpk + b * taps * R, ypad + b * R * ys + q, ys);
        }
    });
}

}  // namespace direct_detail

// The padded copy of x ([C][N][H][W]) that direct_conv reads.
inline void pad_input(const direct_geometry& g, const float* x, float* xpad, thread_pool* pool) {
    const std::size_t xs = g.in_stride(), wp = g.wp(), hp = g.hp();
    parallel_for(pool, g.c, 1, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            float* dst = xpad + c * xs;
            std::fill_n(dst, xs, 0.f);
            for (std::size_t n = 0; n < g.n; ++n)
                for (std::size_t y = 0; y < g.h; ++y)
                    detail::copy_short(x + ((c * g.n + n) * g.h + y) * g.w, g.w,
                                       dst + (n * hp + y + g.pad) * wp + g.pad);
        }
    });
}

// y[M][N][Oh][Ow] = epilogue(conv(x, W)) for a stride-1 convolution with K x K kernels. wpk:
// the weights packed by pack_direct_weights; xpad and ypad: scratch of g.input_floats() and
// g.output_floats(m) floats.
template <std::size_t K>
void direct_conv(const direct_geometry& g, const float* x, const float* wpk, std::size_t m, float* xpad, float* ypad,
                 float* y, const conv_epilogue& e, thread_pool* pool) {
    pad_input(g, x, xpad, pool);
    // Tiles of max_vectors vectors, then one of the 1 or 2 vectors left: no tile computes a
    // whole vector of positions past the end.
    constexpr std::size_t V = direct_detail::max_vectors;
    const std::size_t vectors = (g.positions() + simd::width - 1) / simd::width, full = vectors / V;
    direct_detail::tiles<V, K>(g, xpad, wpk, m, 0, full, ypad, pool);
    const std::size_t first = full * V * simd::width;
    if (vectors % V == 1) direct_detail::tiles<1, K>(g, xpad, wpk, m, first, 1, ypad, pool);
    if (vectors % V == 2) direct_detail::tiles<2, K>(g, xpad, wpk, m, first, 1, ypad, pool);
    // The real positions, row by row, through the epilogue.
    const std::size_t ys = g.out_stride(), hp = g.hp(), wp = g.wp(), oh = g.oh(), ow = g.ow();
    // A row is written in whole vectors while the channel has room for them: the lanes past
    // the row land on the next row, written after it.
    const std::size_t whole = (ow + simd::width - 1) / simd::width * simd::width;
    parallel_for(pool, m, 1, [&](std::size_t m0, std::size_t m1) {
        for (std::size_t o = m0; o < m1; ++o) {
            const auto f = e.of(o);
            float* dst = y + o * g.n * oh * ow;
            std::size_t left = g.n * oh * ow;
            for (std::size_t n = 0; n < g.n; ++n)
                for (std::size_t r = 0; r < oh; ++r, dst += ow, left -= ow) {
                    const float* src = ypad + o * ys + (n * hp + r) * wp;
                    if (left >= whole) {
                        for (std::size_t i = 0; i < ow; i += simd::width)
                            f(simd::vec::load_unaligned(src + i)).store_unaligned(dst + i);
                    } else {
                        for (std::size_t i = 0; i < ow; ++i) dst[i] = f(src[i]);
                    }
                }
        }
    });
}

}  // namespace sgp::kernels
