#pragma once
// 3x3, padding-1 convolutions on maps narrower than an AVX-512 vector: the 8x8, 4x4 and 2x2 maps
// of the deep layers of networks on 32x32 inputs. Through the zero-padded copy of direct_conv
// such a map wastes a third (8x8: 64 of 100 positions used) to three quarters (2x2: 4 of 16) of
// its arithmetic, and the GEMM spends as much on forming and packing its columns as on its
// products. Here the channel's [N][H][W] plane is read as it is, 16 pixels to a vector:
//   - 8x8 (any map 8 wide with a multiple of 4 rows): a vector holds 2 rows of one image, an
//     image spans 4 vectors (`H = 0` below: images over several vectors);
//   - 4x4: a vector is one image; 2x2: four images.
// Every tap (dy, dx) of every lane is one masked valignd (kernels/avx512_taps.hpp) of the vector
// with its neighbour D = dy * W + dx lanes away. Lanes whose tap is outside their image are
// zeroed by the mask, a compile-time constant of (W, H, dy, dx); a neighbour that belongs to
// another image is not read (a zero vector), and no lane past the plane's last pixel is loaded.
// Nothing is computed and dropped, and nothing is copied or packed but the weights.
//
// Forward (and the data gradient, the same convolution with flipped weights): a register tile
// is 8 output channels x 2 vectors, as the row tiles of direct_conv (per tap 2 shuffles, 8
// weight broadcasts, 16 FMAs); each output sums over (c, ky, kx) in the positions tile's order.
// Weight gradient: 2 output channels x one input channel x 9 taps of lane-wise partial sums,
// as direct_weight_grad's, over runs of vectors.
#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"
#include "sgp/kernels/avx512_sum_lanes.hpp"
#include "sgp/kernels/avx512_taps.hpp"
#include "sgp/kernels/conv_epilogue.hpp"
#include "sgp/kernels/direct_geometry.hpp"

namespace sgp::kernels {

// Whether the small-map kernels serve a 3x3 convolution with padding `pad` on an h x w map
// (stride 1, so the output map is the input's): AVX-512 builds only.
constexpr bool small_map_applies(std::size_t k, std::size_t pad, std::size_t h, std::size_t w) {
#if SGP_AVX512_TAPS
    return simd::width == 16 && k == 3 && pad == 1 &&
           ((w == 8 && h % 4 == 0 && h > 0) || (w == 4 && h == 4) || (w == 2 && h == 2));
#else
    (void)k, (void)pad, (void)h, (void)w;
    return false;
#endif
}
inline bool small_map_applies(const direct_geometry& g) {
    return small_map_applies(g.k, g.pad, g.h, g.w);
}

#if SGP_AVX512_TAPS
namespace small_map_detail {

// How a W-wide map lies on vectors. H = 0: images over several whole vectors (16 / W rows each),
// the rows above and below a vector's own in its neighbours. H > 0: 16 / (H W) whole H x W images
// per vector, no neighbour needed.
template <std::size_t W, std::size_t H>
struct layout {
    static_assert(16 % W == 0 && (H == 0 || 16 % (W * H) == 0));
    // Lanes whose tap (dy, dx) is inside their image (H = 0: inside its row; the rows above and
    // below are the neighbours', zero beyond the image).
    static constexpr __mmask16 keep(int dy, int dx) {
        unsigned m = 0;
        for (int i = 0; i < 16; ++i) {
            const int q = H > 0 ? i % static_cast<int>(W * H) : i;
            const int row = q / static_cast<int>(W), col = q % static_cast<int>(W);
            bool in = col + dx >= 0 && col + dx < static_cast<int>(W);
            if (H > 0) in = in && row + dy >= 0 && row + dy < static_cast<int>(H);
            if (in) m |= 1u << i;
        }
        return static_cast<__mmask16>(m);
    }
    // keep() of tap T = 3 (dy + 1) + dx + 1, evaluated at compile time: called at run time
    // with a T from an unrolled loop, GCC 12 does not fold it.
    static constexpr __mmask16 tap_keep[9] = {keep(-1, -1), keep(-1, 0), keep(-1, 1), keep(0, -1), keep(0, 0),
                                              keep(0, 1),   keep(1, -1), keep(1, 0),  keep(1, 1)};
};

// Tap T (= 3 ky + kx) of every lane of `cur`. Called with T from a fully unrolled loop, the switch
// folds away; with the taps in a lambda instead, GCC 12 keeps the accumulators in memory.
template <std::size_t W, std::size_t H>
[[gnu::always_inline]] inline __m512 tap(int T, __m512 prev, __m512 cur, __m512 next) {
    using L = layout<W, H>;
    constexpr int w = static_cast<int>(W);
    switch (T) {
        case 0:
            return avx512_taps::tap<-w - 1>(prev, cur, next, L::tap_keep[0]);
        case 1:
            return avx512_taps::tap<-w>(prev, cur, next, L::tap_keep[1]);
        case 2:
            return avx512_taps::tap<-w + 1>(prev, cur, next, L::tap_keep[2]);
        case 3:
            return avx512_taps::tap<-1>(prev, cur, next, L::tap_keep[3]);
        case 4:
            return cur;
        case 5:
            return avx512_taps::tap<1>(prev, cur, next, L::tap_keep[5]);
        case 6:
            return avx512_taps::tap<w - 1>(prev, cur, next, L::tap_keep[6]);
        case 7:
            return avx512_taps::tap<w>(prev, cur, next, L::tap_keep[7]);
        default:
            return avx512_taps::tap<w + 1>(prev, cur, next, L::tap_keep[8]);
    }
}

inline constexpr std::size_t R = direct_detail::R;  // output channels per block

// B blocks of R output channels (from o0, `outs` in all; blocks bs floats apart in w) x V
// vectors from x (channel 0; channels cs floats apart) into y (the first channel's first vector;
// channels ys apart): B = 1, V = 2 in general, B = 2, V = 1 where a plane is one vector (4x4 at
// batch 1), so that the tile is not half empty (but for an odd last block, which takes B = 1,
// V = 2 with an empty second vector). prev / next: whether the vectors before and
// after are of the same image (H = 0); lanes0 / lanes1: the pixels in each vector (H > 0: the
// last vector of the plane may be partial).
template <std::size_t W, std::size_t H, std::size_t B, std::size_t V>
[[gnu::noinline]] void tile(const float* x, std::size_t cs, std::size_t channels, __mmask16 prev, __mmask16 next,
                            __mmask16 lanes0, __mmask16 lanes1, const float* w, std::size_t bs, float* y,
                            std::size_t ys, std::size_t o0, std::size_t outs, const conv_epilogue& e) {
    static_assert((B == 1 && V == 2) || (B == 2 && V == 1 && H > 0));
    constexpr std::size_t M = B * R;
    const __m512 zero = _mm512_setzero_ps();
    __m512 acc[M][V];
    SGP_UNROLL(16)  // unrolled, as every loop over the accumulators (see weight_tile)
    for (std::size_t r = 0; r < M; ++r) {
        SGP_UNROLL(2)
        for (std::size_t t = 0; t < V; ++t) acc[r][t] = zero;
    }
    for (std::size_t c = 0; c < channels; ++c, x += cs, w += 9 * R) {
        __m512 xv[V + 2];
        if constexpr (H == 0) {
            // A neighbour of another image is not read (and its address not formed): zeros.
            xv[0] = prev ? _mm512_loadu_ps(x - 16) : zero;
            xv[1] = _mm512_loadu_ps(x);
            xv[2] = _mm512_loadu_ps(x + 16);
            xv[3] = next ? _mm512_loadu_ps(x + 32) : zero;
        } else {
            xv[0] = xv[V + 1] = zero;
            xv[1] = _mm512_maskz_loadu_ps(lanes0, x);
            if constexpr (V == 2) xv[2] = _mm512_maskz_loadu_ps(lanes1, x + 16);
        }
        SGP_UNROLL(9)
        for (int T = 0; T < 9; ++T) {
            __m512 tv[V];
            SGP_UNROLL(2)
            for (std::size_t t = 0; t < V; ++t)
                tv[t] = H == 0 ? small_map_detail::tap<W, H>(T, xv[t], xv[t + 1], xv[t + 2])
                               : small_map_detail::tap<W, H>(T, zero, xv[t + 1], zero);
            SGP_UNROLL(16)
            for (std::size_t r = 0; r < M; ++r) {
                const __m512 wv = _mm512_set1_ps(w[r / R * bs + T * R + r % R]);
                SGP_UNROLL(2)
                for (std::size_t t = 0; t < V; ++t) acc[r][t] = _mm512_fmadd_ps(wv, tv[t], acc[r][t]);
            }
        }
    }
    SGP_UNROLL(16)
    for (std::size_t r = 0; r < M; ++r) {
        if (o0 + r >= outs) break;
        const auto f = e.of(o0 + r);
        float* dst = y + r * ys;
        _mm512_mask_storeu_ps(dst, lanes0, f(simd::vec(acc[r][0])));
        if constexpr (V == 2) _mm512_mask_storeu_ps(dst + 16, lanes1, f(simd::vec(acc[r][V - 1])));
    }
}

template <std::size_t W, std::size_t H>
void conv(const direct_geometry& g, const float* x, const float* wpk, std::size_t m, float* y, const conv_epilogue& e,
          thread_pool* pool) {
    const std::size_t plane = g.n * g.h * g.w, vectors = (plane + 15) / 16;
    const std::size_t blocks = (m + R - 1) / R, bs = g.c * 9 * R, per_image = H == 0 ? g.h * g.w / 16 : 1;
    if constexpr (H > 0) {
        if (vectors == 1) {  // one vector in all: pairs of blocks over it
            const __mmask16 lanes = avx512_taps::first_lanes(plane);
            parallel_for(pool, (blocks + 1) / 2, 1, [&](std::size_t i0, std::size_t i1) {
                for (std::size_t i = i0; i < i1; ++i) {
                    const std::size_t b = 2 * i;
                    if (b + 1 < blocks)
                        tile<W, H, 2, 1>(x, plane, g.c, 0, 0, lanes, 0, wpk + b * bs, bs, y + b * R * plane, plane,
                                         b * R, m, e);
                    else
                        tile<W, H, 1, 2>(x, plane, g.c, 0, 0, lanes, 0, wpk + b * bs, bs, y + b * R * plane, plane,
                                         b * R, m, e);
                }
            });
            return;
        }
    }
    constexpr std::size_t VT = 2;
    const std::size_t pairs = (vectors + 1) / 2;
    // Pair-major: a thread keeps the input vectors it reads in cache while every channel block
    // runs over them.
    parallel_for(pool, pairs * blocks, blocks, [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) {
            const std::size_t v0 = i / blocks * VT, b = i % blocks, p0 = v0 * 16;
            __mmask16 prev = 0, next = 0, lanes0 = 0xFFFF, lanes1 = 0xFFFF;
            if constexpr (H == 0) {  // pairs never straddle images: 4 | h makes per_image even
                prev = v0 % per_image ? 0xFFFF : 0;
                next = (v0 + VT) % per_image ? 0xFFFF : 0;
            } else {
                lanes0 = avx512_taps::first_lanes(plane - p0);
                lanes1 = plane > p0 + 16 ? avx512_taps::first_lanes(plane - p0 - 16) : __mmask16(0);
            }
            tile<W, H, 1, VT>(x + p0, plane, g.c, prev, next, lanes0, lanes1, wpk + b * bs, bs, y + b * R * plane + p0,
                              plane, b * R, m, e);
        }
    });
}

// Rt output channels (dy rows dys apart) against one input channel over vectors [v0, v1) of
// the plane (`plane` pixels, `per_image` vectors to an image for H = 0); adds the sums to
// dw[r * dws + tap] (or stores them, for the first run).
template <std::size_t W, std::size_t H, std::size_t Rt>
[[gnu::noinline]] void weight_tile(const float* dy, std::size_t dys, const float* x, std::size_t v0, std::size_t v1,
                                   std::size_t plane, std::size_t per_image, float* dw, std::size_t dws, bool first) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 acc[Rt][9];
    // Every loop over the accumulators unrolled: a loop left (or a range-for, which GCC 12 turns
    // into a memset) keeps them in memory, written back every vector.
    SGP_UNROLL(2)
    for (std::size_t r = 0; r < Rt; ++r) {
        SGP_UNROLL(9)
        for (std::size_t t = 0; t < 9; ++t) acc[r][t] = zero;
    }
    std::size_t phase = v0 % per_image;  // the vector's place in its image (H = 0)
    for (std::size_t v = v0; v < v1; ++v) {
        const std::size_t p = v * 16;
        const __mmask16 lanes = H == 0 ? __mmask16(0xFFFF) : avx512_taps::first_lanes(plane - p);
        __m512 dv[Rt], prev = zero, cur, next = zero;
        SGP_UNROLL(2)
        for (std::size_t r = 0; r < Rt; ++r) dv[r] = _mm512_maskz_loadu_ps(lanes, dy + r * dys + p);
        cur = _mm512_maskz_loadu_ps(lanes, x + p);
        if constexpr (H == 0) {
            if (phase > 0) prev = _mm512_loadu_ps(x + p - 16);  // else another image's: zeros
            if (phase + 1 < per_image) next = _mm512_loadu_ps(x + p + 16);
            if (++phase == per_image) phase = 0;
        }
        SGP_UNROLL(9)
        for (int T = 0; T < 9; ++T) {
            // The taps on the pixel's own row are unaligned loads, the rows above and below
            // shuffles: with all eight by valignd the shuffles bound the tile (measured 10-20 %
            // slower on 4x4 and 2x2). The load's mask is the tap's and the vector's pixels: a lane
            // past the plane would read the next channel, or past the buffer.
            const __m512 tv =
                T / 3 == 1 ? _mm512_maskz_loadu_ps(__mmask16(layout<W, H>::tap_keep[T] & lanes), x + p + T % 3 - 1)
                           : small_map_detail::tap<W, H>(T, prev, cur, next);
            SGP_UNROLL(2)
            for (std::size_t r = 0; r < Rt; ++r) acc[r][T] = _mm512_fmadd_ps(dv[r], tv, acc[r][T]);
        }
    }
    avx512_sum_lanes::add_to(acc, dw, dws, first);
}

// Vectors per run of the weight gradient: a tile's two dy runs (16 KB each) stay in L1 while
// every input channel runs over them (direct_weight_grad's chunk).
inline constexpr std::size_t weight_run_vectors = 256;

template <std::size_t W, std::size_t H>
void weight_grad(const direct_geometry& g, const float* x, const float* dy, std::size_t m, float* dw,
                 thread_pool* pool) {
    constexpr std::size_t Rg = 2;
    const std::size_t plane = g.n * g.h * g.w, vectors = (plane + 15) / 16, per_image = H == 0 ? g.h * g.w / 16 : 1;
    const std::size_t blocks = (m + Rg - 1) / Rg, tiles = blocks * g.c, dws = g.c * 9;
    for (std::size_t v0 = 0; v0 < vectors; v0 += weight_run_vectors) {
        const std::size_t v1 = std::min(vectors, v0 + weight_run_vectors);
        const bool first = v0 == 0;
        // Block-major: a thread keeps one block's dy runs in cache across the input channels.
        parallel_for(pool, tiles, g.c, [&](std::size_t i0, std::size_t i1) {
            for (std::size_t i = i0; i < i1; ++i) {
                const std::size_t b = i / g.c, c = i % g.c, o = b * Rg;
                const float* xc = x + c * plane;
                float* dwo = dw + o * dws + c * 9;
                if (o + Rg <= m)
                    weight_tile<W, H, Rg>(dy + o * plane, plane, xc, v0, v1, plane, per_image, dwo, dws, first);
                else
                    weight_tile<W, H, 1>(dy + o * plane, plane, xc, v0, v1, plane, per_image, dwo, dws, first);
            }
        });
    }
}

// Calls f.template operator()<W, H>() with the layout of g (small_map_applies(g) holds).
template <class F>
void with_layout(const direct_geometry& g, F&& f) {
    if (g.w == 8) return f.template operator()<8, 0>();
    if (g.w == 4) return f.template operator()<4, 4>();
    return f.template operator()<2, 2>();
}

}  // namespace small_map_detail

// y[M][N][H][W] = epilogue(conv(x, W)) for small_map_applies(g); wpk: pack_direct_weights.
inline void small_map_conv(const direct_geometry& g, const float* x, const float* wpk, std::size_t m, float* y,
                           const conv_epilogue& e, thread_pool* pool) {
    small_map_detail::with_layout(
        g, [&]<std::size_t W, std::size_t H>() { small_map_detail::conv<W, H>(g, x, wpk, m, y, e, pool); });
}

// dw[M][C][3][3] = the weight gradient for small_map_applies(g): input x ([C][N][H][W]), output
// gradient dy ([M][N][H][W]). Overwrites dw.
inline void small_map_weight_grad(const direct_geometry& g, const float* x, const float* dy, std::size_t m, float* dw,
                                  thread_pool* pool) {
    small_map_detail::with_layout(
        g, [&]<std::size_t W, std::size_t H>() { small_map_detail::weight_grad<W, H>(g, x, dy, m, dw, pool); });
}
#endif

}  // namespace sgp::kernels
