#pragma once
// The weight gradient of a stride-1 3x3 convolution without a column matrix:
//   dW[m][c][ky][kx] = sum over (n, oy, ox) of dy[m][n][oy][ox] * xpad[c][n][oy + ky][ox + kx].
// As a GEMM (dY * col^T) the column matrix is packed transposed (conv_columns.hpp), and the
// first layer's 9 columns fill a third of a 32-wide tile. Here every product is a vector of
// output pixels along a row: dy's rows are read as they are, each tap of the padded input is
// one (unaligned) vector load, and nothing is packed. It pays where the GEMM's tiles are mostly
// padding (see direct_weight_grad_pays).
//
// Register tile: R output channels x one input channel x 9 taps = 9R vector accumulators (18
// on AVX-512), each a lane-wise partial sum over the pixels; per vector of pixels R loads of
// dy and 9 of x for 9R FMAs. Rows are taken in chunks so that a chunk's dy rows of a tile's
// output channels stay in cache while every input channel runs over them; each tile's sums
// are reduced across lanes and added to dW once per chunk.
//
// Applies when the output rows are 1 to 4 whole vectors (ow a multiple of the SIMD width: the
// 32x32 and 16x16 maps on AVX-512). Threads split tiles, never a sum, so the result does not depend
// on the thread count.
#include <algorithm>
#include <cstddef>

#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"
#include "sgp/kernels/avx512_sum_lanes.hpp"
#include "sgp/kernels/avx512_taps.hpp"
#include "sgp/kernels/direct_conv.hpp"
#include "sgp/kernels/small_map_conv.hpp"

#if SGP_AVX512_TAPS
#define SGP_WEIGHT_GRAD_AVX512 1
#endif

namespace sgp::kernels {

namespace weight_grad_detail {
// Output channels per tile: 18 accumulators and the row's dy and x vectors fit AVX-512's 32
// registers (27 for three channels were measured spilled by GCC 12); AVX2's 16 take one (9 + 2).
inline constexpr std::size_t R = simd::width >= 16 ? 2 : 1;
// Output pixels per chunk: a tile's dy rows (16 KB per channel) stay in L1 while every input
// channel runs over them.
inline constexpr std::size_t chunk_pixels = 4096;

// Rt output channels (dy rows at dy[r * dys]) against input channel x over `rows` output rows
// from output row `row0` (of n * oh), V vectors per row (a compile-time count: with a loop over
// a row's vectors GCC 12 keeps the accumulators in memory between rows); adds the sums to
// dw[r * dws + tap].
template <std::size_t Rt, std::size_t V>
[[gnu::noinline]] void tile(const float* dy, std::size_t dys, const float* x, const direct_geometry& g,
                            std::size_t row0, std::size_t rows, float* dw, std::size_t dws, bool first) {
    using simd::vec;
    constexpr std::size_t W = simd::width, T = 9;
    const std::size_t ow = g.ow(), oh = g.oh(), wp = g.wp(), hp = g.hp();
    vec acc[Rt][T];
    SGP_UNROLL(3)
    for (std::size_t r = 0; r < Rt; ++r) {
        SGP_UNROLL(9)
        for (std::size_t t = 0; t < T; ++t) acc[r][t] = vec(0.f);
    }
    std::size_t oy = row0 % oh;
    const float* d = dy + row0 * ow;
    const float* s = x + (row0 / oh * hp + oy) * wp;
    for (std::size_t k = 0; k < rows; ++k) {
        {
            vec dv[Rt][V];
            SGP_UNROLL(3)
            for (std::size_t r = 0; r < Rt; ++r) {
                SGP_UNROLL(4)
                for (std::size_t v = 0; v < V; ++v) dv[r][v] = vec::load_unaligned(d + r * dys + v * W);
            }
            SGP_UNROLL(3)
            for (std::size_t ky = 0; ky < 3; ++ky) {
                SGP_UNROLL(3)
                for (std::size_t kx = 0; kx < 3; ++kx) {
                    SGP_UNROLL(4)
                    for (std::size_t v = 0; v < V; ++v) {
                        const vec xv = vec::load_unaligned(s + ky * wp + kx + v * W);
                        SGP_UNROLL(3)
                        for (std::size_t r = 0; r < Rt; ++r)
                            acc[r][ky * 3 + kx] = simd::fma(dv[r][v], xv, acc[r][ky * 3 + kx]);
                    }
                }
            }
        }
        d += ow;
        s += wp;
        if (++oy == oh) {  // the next image: past its padding rows
            oy = 0;
            s += (hp - oh) * wp;
        }
    }
    for (std::size_t r = 0; r < Rt; ++r)
        for (std::size_t t = 0; t < T; ++t) {
            const float v = simd::hadd(acc[r][t]);
            float& o = dw[r * dws + t];
            o = first ? v : o + v;
        }
}

// The widest rows it takes, in vectors (64 pixels on AVX-512).
inline constexpr std::size_t max_row_vectors = 4;

// Calls f.template operator()<V>() with the row's vector count V (1 to 4) as a constant: the
// tiles unroll over a row's vectors.
template <class F>
void with_row_vectors(std::size_t vectors, F&& f) {
    switch (vectors) {
        case 1:
            return f.template operator()<1>();
        case 2:
            return f.template operator()<2>();
        case 3:
            return f.template operator()<3>();
        default:
            return f.template operator()<4>();
    }
}

#if SGP_WEIGHT_GRAD_AVX512
// The same tile on AVX-512 without the padded copy: each input row is read as it is, in whole
// vectors (aligned where the activations are: sgp's buffers are 64-byte aligned, and so is every
// row of a map 16 pixels wide or a multiple), and the taps at kx = 0 and 2 (one column left or
// right) are made in registers by valignd with the neighbouring vector, a zero vector beyond
// either edge (the padding columns). Rows above and below the map read a row of zeros. Per row
// of V vectors: R * V + 3 * V loads and 4 * V shuffles for 18 * V FMAs, against 11 * V loads, 6 * V
// of them split across cache lines, in the portable tile.
template <std::size_t Rt, std::size_t V>
[[gnu::noinline]] void tile_avx512(const float* dy, std::size_t dys, const float* x, const direct_geometry& g,
                                   std::size_t row0, std::size_t rows, float* dw, std::size_t dws, bool first) {
    alignas(64) static constexpr float zeros[16 * V] = {};
    const std::size_t w = g.w, h = g.h;  // the output map is the input's (3x3, padding 1)
    const __m512 zero = _mm512_setzero_ps();
    __m512 acc[Rt][9];
    SGP_UNROLL(2)  // unrolled, as every loop over the accumulators (see small_map_conv.hpp)
    for (std::size_t r = 0; r < Rt; ++r) {
        SGP_UNROLL(9)
        for (std::size_t t = 0; t < 9; ++t) acc[r][t] = zero;
    }
    std::size_t oy = row0 % h;
    const float* d = dy + row0 * w;
    const float* s = x + row0 * w;
    for (std::size_t k = 0; k < rows; ++k) {
        __m512 dv[Rt][V];
        SGP_UNROLL(3)
        for (std::size_t r = 0; r < Rt; ++r) {
            SGP_UNROLL(4)
            for (std::size_t v = 0; v < V; ++v) dv[r][v] = _mm512_loadu_ps(d + r * dys + v * 16);
        }
        const float* in[3] = {oy > 0 ? s - w : zeros, s, oy + 1 < h ? s + w : zeros};
        SGP_UNROLL(3)
        for (std::size_t ky = 0; ky < 3; ++ky) {
            __m512 xv[V];
            SGP_UNROLL(4)
            for (std::size_t v = 0; v < V; ++v) xv[v] = _mm512_loadu_ps(in[ky] + v * 16);
            SGP_UNROLL(4)
            for (std::size_t v = 0; v < V; ++v) {
                const __m512 taps[3] = {avx512_taps::align<15>(xv[v], v > 0 ? xv[v - 1] : zero),  // column - 1
                                        xv[v], avx512_taps::align<1>(v + 1 < V ? xv[v + 1] : zero, xv[v])};
                SGP_UNROLL(3)
                for (std::size_t kx = 0; kx < 3; ++kx) {
                    SGP_UNROLL(3)
                    for (std::size_t r = 0; r < Rt; ++r)
                        acc[r][ky * 3 + kx] = _mm512_fmadd_ps(dv[r][v], taps[kx], acc[r][ky * 3 + kx]);
                }
            }
        }
        d += w;
        s += w;
        if (++oy == h) oy = 0;
    }
    avx512_sum_lanes::add_to(acc, dw, dws, first);
}

// AVX-512 reads x unpadded: only for 3x3 with padding 1, the output map the input's.
inline bool aligned_path(const direct_geometry& g) {
    return simd::width == 16 && g.k == 3 && g.pad == 1;
}
#endif
}  // namespace weight_grad_detail

// Whether direct_weight_grad applies to a stride-1 3x3 convolution with padding `pad` and an
// oh x ow output map: output rows of 1 to 4 whole vectors, or a map small_map_conv.hpp serves.
constexpr bool direct_weight_grad_applies(std::size_t k, std::size_t pad, std::size_t oh, std::size_t ow) {
    return (k == 3 && ow % simd::width == 0 && ow / simd::width >= 1 &&
            ow / simd::width <= weight_grad_detail::max_row_vectors) ||
           small_map_applies(k, pad, oh, ow);
}

// Whether it beats the GEMM (dY * col^T) for an oh x ow output map, measured per shape at batch
// 64 (bench_kernels --methods, docs/performance.md). On AVX-512 (the aligned tiles) wherever it
// applies but on maps under 16 pixels: 80-90 % of the FMA peak on VGG's 32x32 to 4x4 layers
// against the GEMM's 50-70 %, whose transposed packing costs as much as its products. On 2x2
// maps a tile runs over 16 vectors only (at batch 64), and its fixed costs (the lane sums of 18
// accumulators) leave it at 61 % against the GEMM's 72 % on wide layers. There, and wherever the
// portable tile (split loads) runs, it is taken only where the GEMM's tiles are mostly padding:
// narrow layers (up to 32 output channels) and up to 4 input channels (C * 9 columns fill one or
// two of its 32-wide tiles).
constexpr bool direct_weight_grad_pays(std::size_t cin, std::size_t cout, std::size_t oh, std::size_t ow) {
#if SGP_WEIGHT_GRAD_AVX512
    if (simd::width == 16 && oh * ow >= 16) return true;
#endif
    (void)oh, (void)ow;
    return cout <= 32 || cin <= 4;
}

// dw[M][C][3][3] = the weight gradient of a stride-1 3x3 convolution with input x
// ([C][N][H][W], geometry g) and output gradient dy ([M][N][Oh][Ow]); needs
// direct_weight_grad_applies(3, g.pad, g.oh(), g.ow()). xpad: scratch of g.input_floats() floats
// (x padded). Overwrites dw.
inline void direct_weight_grad(const direct_geometry& g, const float* x, const float* dy, std::size_t m, float* xpad,
                               float* dw, thread_pool* pool) {
    namespace d = weight_grad_detail;
#if SGP_AVX512_TAPS
    if (small_map_applies(g)) return small_map_weight_grad(g, x, dy, m, dw, pool);
#endif
    constexpr std::size_t R = d::R;
#if SGP_WEIGHT_GRAD_AVX512
    const bool aligned = d::aligned_path(g);
#else
    constexpr bool aligned = false;
#endif
    if (!aligned) pad_input(g, x, xpad, pool);
    const std::size_t ow = g.ow(), rows = g.n * g.oh(), chunk_rows = std::max<std::size_t>(1, d::chunk_pixels / ow);
    const std::size_t blocks = (m + R - 1) / R, tiles = blocks * g.c;
    const std::size_t dys = rows * ow, xs = g.in_stride(), dws = g.c * 9, vectors = ow / simd::width;
    for (std::size_t row0 = 0; row0 < rows; row0 += chunk_rows) {
        const std::size_t count = std::min(chunk_rows, rows - row0);
        const bool first = row0 == 0;
        // Block-major: a thread keeps one block's dy rows in cache across the input channels.
        parallel_for(pool, tiles, g.c, [&](std::size_t i0, std::size_t i1) {
            for (std::size_t i = i0; i < i1; ++i) {
                const std::size_t b = i / g.c, c = i % g.c, o = b * R, left = std::min(R, m - o);
                const float* dyo = dy + o * dys;
                float* dwo = dw + o * dws + c * 9;
                // One tile of Rt output channels over the chunk's rows.
                auto run = [&]<std::size_t Rt>(const float* dyr, float* dwr) {
                    d::with_row_vectors(vectors, [&]<std::size_t V>() {
#if SGP_WEIGHT_GRAD_AVX512
                        if (aligned)
                            return d::tile_avx512<Rt, V>(dyr, dys, x + c * rows * ow, g, row0, count, dwr, dws, first);
#endif
                        d::tile<Rt, V>(dyr, dys, xpad + c * xs, g, row0, count, dwr, dws, first);
                    });
                };
                if (left == R)
                    run.template operator()<R>(dyo, dwo);
                else
                    for (std::size_t r = 0; r < left; ++r) run.template operator()<1>(dyo + r * dys, dwo + r * dws);
            }
        });
    }
}

}  // namespace sgp::kernels
