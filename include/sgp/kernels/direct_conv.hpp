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
#include "sgp/kernels/conv_epilogue.hpp"
#include "sgp/kernels/copy.hpp"
#include "sgp/kernels/direct_geometry.hpp"
#include "sgp/kernels/small_map_conv.hpp"

#if SGP_AVX512_TAPS
#define SGP_DIRECT_ROWS_AVX512 1
#endif

namespace sgp::kernels {

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

#if SGP_DIRECT_ROWS_AVX512
namespace direct_detail {

// A 3x3, padding-1 convolution on AVX-512 whose rows are 1, 2 or 4 whole vectors (maps 16, 32 or
// 64 pixels wide): the input is read as it is, in whole vectors, one output row at a time, with
// no padded copy, no positions computed in the padding, and no scratch output. The loads are
// aligned where the activations are (sgp's buffers are 64-byte aligned, and so is every row of
// such a map), so none is split across cache lines.
// The taps one column left and right are made in registers by valignd with the neighbouring
// vector (zero beyond either edge); rows above and below the map read zeros. The epilogue is
// applied as the row is stored. Per input channel and kernel row: VT + 2 loads, 2 VT shuffles,
// 24 B weight broadcasts, 24 B VT FMAs. Each output sums over (c, ky, kx) in the same order as
// the positions tile above.
constexpr bool rows_apply(std::size_t k, std::size_t pad, std::size_t w) {
    const std::size_t v = w / 16;  // a row is covered by tiles of 1 vector or of 2
    return simd::width == 16 && k == 3 && pad == 1 && w % 16 == 0 && (v == 1 || v == 2 || v == 4);
}
inline bool rows_apply(const direct_geometry& g) {
    return rows_apply(g.k, g.pad, g.w);
}

// B blocks of R = 8 output channels x VT vectors of one output row, from vector v0 of `vectors`.
template <std::size_t B, std::size_t VT>
[[gnu::noinline]] void row_tile(const float* x, std::size_t cs, std::size_t channels, std::size_t w, std::size_t h,
                                std::size_t row, std::size_t v0, std::size_t vectors, const float* wpk, std::size_t bs,
                                float* y, std::size_t ys, std::size_t o0, std::size_t m, const conv_epilogue& e) {
    static_assert(R == 8);
    alignas(64) static constexpr float zeros[64] = {};
    const __m512 zero = _mm512_setzero_ps();
    const std::size_t oy = row % h;
    const bool has_left = v0 > 0, has_right = v0 + VT < vectors;
    __m512 acc[B * R][VT];
    for (auto& a : acc)
        for (auto& v : a) v = zero;
    const float* s = x + row * w + v0 * 16;
    for (std::size_t c = 0; c < channels; ++c, s += cs) {
        const float* in[3] = {oy > 0 ? s - w : zeros + 16, s, oy + 1 < h ? s + w : zeros + 16};
        SGP_UNROLL(3)
        for (std::size_t ky = 0; ky < 3; ++ky) {
            __m512 xv[VT + 2];
            xv[0] = has_left ? _mm512_loadu_ps(in[ky] - 16) : zero;
            SGP_UNROLL(2)
            for (std::size_t t = 0; t < VT; ++t) xv[t + 1] = _mm512_loadu_ps(in[ky] + t * 16);
            xv[VT + 1] = has_right ? _mm512_loadu_ps(in[ky] + VT * 16) : zero;
            __m512 taps[3][VT];
            SGP_UNROLL(2)
            for (std::size_t t = 0; t < VT; ++t) {
                taps[0][t] = avx512_taps::align<15>(xv[t + 1], xv[t]);  // column - 1
                taps[1][t] = xv[t + 1];
                taps[2][t] = avx512_taps::align<1>(xv[t + 2], xv[t + 1]);  // column + 1
            }
            const float* wt = wpk + (c * 9 + ky * 3) * R;
            SGP_UNROLL(3)
            for (std::size_t kx = 0; kx < 3; ++kx) {
                SGP_UNROLL(2)
                for (std::size_t b = 0; b < B; ++b) {
                    SGP_UNROLL(8)
                    for (std::size_t r = 0; r < R; ++r) {
                        const __m512 wv = _mm512_set1_ps(wt[b * bs + kx * R + r]);
                        SGP_UNROLL(2)
                        for (std::size_t t = 0; t < VT; ++t)
                            acc[b * R + r][t] = _mm512_fmadd_ps(wv, taps[kx][t], acc[b * R + r][t]);
                    }
                }
            }
        }
    }
    for (std::size_t i = 0; i < B * R && o0 + i < m; ++i) {
        const auto f = e.of(o0 + i);
        float* dst = y + i * ys + v0 * 16;
        for (std::size_t t = 0; t < VT; ++t) f(simd::vec(acc[i][t])).store_unaligned(dst + t * 16);
    }
}

// 8 output channels x two consecutive output rows (`row`, even within its image, and the next) of
// a map one vector wide (16 pixels): the same 16 accumulators as two blocks over one row, with
// half the weight broadcasts (each used by both rows). Per input channel and kernel row: the
// taps of the two input rows it reads (4 shuffles), 24 broadcasts, 48 FMAs; each output sums in
// the row tile's order.
[[gnu::noinline]] inline void row_pair_tile(const float* x, std::size_t cs, std::size_t channels, std::size_t h,
                                            std::size_t row, const float* wpk, float* y, std::size_t ys, std::size_t o0,
                                            std::size_t m, const conv_epilogue& e) {
    static_assert(R == 8);
    const __m512 zero = _mm512_setzero_ps();
    const std::size_t oy = row % h;
    const bool above = oy > 0, below = oy + 2 < h;
    __m512 acc[R][2];
    SGP_UNROLL(8)  // unrolled, as every loop over the accumulators (see small_map_conv.hpp)
    for (std::size_t r = 0; r < R; ++r) acc[r][0] = acc[r][1] = zero;
    const float* s = x + row * 16;
    for (std::size_t c = 0; c < channels; ++c, s += cs, wpk += 9 * R) {
        // Input rows oy - 1 .. oy + 2 (zeros outside the map).
        const __m512 in[4] = {above ? _mm512_loadu_ps(s - 16) : zero, _mm512_loadu_ps(s), _mm512_loadu_ps(s + 16),
                              below ? _mm512_loadu_ps(s + 32) : zero};
        SGP_UNROLL(3)
        for (std::size_t ky = 0; ky < 3; ++ky) {
            __m512 taps[2][3];  // [output row][kx]: input row t + ky
            SGP_UNROLL(2)
            for (std::size_t t = 0; t < 2; ++t) {
                taps[t][0] = avx512_taps::align<15>(in[t + ky], zero);  // column - 1
                taps[t][1] = in[t + ky];
                taps[t][2] = avx512_taps::align<1>(zero, in[t + ky]);  // column + 1
            }
            SGP_UNROLL(3)
            for (std::size_t kx = 0; kx < 3; ++kx) {
                SGP_UNROLL(8)
                for (std::size_t r = 0; r < R; ++r) {
                    const __m512 wv = _mm512_set1_ps(wpk[(ky * 3 + kx) * R + r]);
                    acc[r][0] = _mm512_fmadd_ps(wv, taps[0][kx], acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(wv, taps[1][kx], acc[r][1]);
                }
            }
        }
    }
    SGP_UNROLL(8)
    for (std::size_t r = 0; r < R; ++r) {
        if (o0 + r >= m) break;
        const auto f = e.of(o0 + r);
        f(simd::vec(acc[r][0])).store_unaligned(y + r * ys);
        f(simd::vec(acc[r][1])).store_unaligned(y + r * ys + 16);
    }
}

// y[M][N][H][W] = epilogue(conv(x, W)) by row tiles: blocks of 8 output channels by 2 vectors of
// a row; on rows of one vector, by pairs of rows (images of an even height) or two blocks at a
// time by one row, to keep 16 accumulators.
inline void direct_rows(const direct_geometry& g, const float* x, const float* wpk, std::size_t m, float* y,
                        const conv_epilogue& e, thread_pool* pool) {
    const std::size_t vectors = g.w / 16, rows = g.n * g.h, cs = rows * g.w, bs = g.c * 9 * R;
    const std::size_t blocks = (m + R - 1) / R;
    if (vectors == 1 && g.h % 2 == 0) {
        // Row-major over (pair of rows, channel block), as below.
        parallel_for(pool, rows / 2 * blocks, blocks, [&](std::size_t i0, std::size_t i1) {
            for (std::size_t i = i0; i < i1; ++i) {
                const std::size_t row = i / blocks * 2, b = i % blocks, o0 = b * R;
                row_pair_tile(x, cs, g.c, g.h, row, wpk + b * bs, y + o0 * cs + row * 16, cs, o0, m, e);
            }
        });
        return;
    }
    const std::size_t B = vectors == 1 ? 2 : 1, VT = vectors == 1 ? 1 : 2;
    const std::size_t groups = (blocks + B - 1) / B, halves = vectors / VT;
    // Row-major over (row, part of the row, channel group): a thread keeps the rows it reads in
    // cache while every channel group runs over them.
    parallel_for(pool, rows * halves * groups, halves * groups, [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) {
            const std::size_t row = i / (halves * groups), v0 = i / groups % halves * VT, grp = i % groups;
            const std::size_t b0 = grp * B, o0 = b0 * R;
            const float* wb = wpk + b0 * bs;
            float* yo = y + o0 * cs + row * g.w;
            if (B == 2 && b0 + 1 < blocks)
                row_tile<2, 1>(x, cs, g.c, g.w, g.h, row, v0, vectors, wb, bs, yo, cs, o0, m, e);
            else if (B == 2)
                row_tile<1, 1>(x, cs, g.c, g.w, g.h, row, v0, vectors, wb, bs, yo, cs, o0, m, e);
            else
                row_tile<1, 2>(x, cs, g.c, g.w, g.h, row, v0, vectors, wb, bs, yo, cs, o0, m, e);
        }
    });
}

}  // namespace direct_detail
#endif

// Whether direct_conv reads a K x K convolution's h x w map as it is, computing only output
// pixels (the row tiles or the small-map tiles), rather than through the padded copy.
constexpr bool direct_waste_free(std::size_t k, std::size_t pad, std::size_t h, std::size_t w) {
#if SGP_DIRECT_ROWS_AVX512
    if (direct_detail::rows_apply(k, pad, w)) return true;
#endif
    return small_map_applies(k, pad, h, w);
}

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
#if SGP_DIRECT_ROWS_AVX512
    if constexpr (K == 3) {
        if (direct_detail::rows_apply(g)) return direct_detail::direct_rows(g, x, wpk, m, y, e, pool);
        if (small_map_applies(g)) return small_map_conv(g, x, wpk, m, y, e, pool);
    }
#endif
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
