#pragma once
// A convolution's column matrix packed for gemm_bf16 straight from its input: bf16 pairs
// written where kernels/gemm_bf16.hpp's B layout wants them, with no fp32 panel in between.
// The generic path (fp32 pack_b, then pairing) cost more than the AMX products themselves:
// 47 % of a bf16 VGG13-BN training step against 15 % in tdpbf16ps (perf, 1 thread).
//
// Both forms gather one row of the column matrix, (c, ky, kx) over 32 consecutive output
// pixels, into two vectors: each run of pixels within one output row is one expanding masked
// load (the lanes in the padding stay zero, nothing outside the map is read) and one masked
// store. The column matrix (forward, data gradient) pairs two such rows; its transpose (weight
// gradient) pairs neighbouring pixels of one row and writes them down a tile column.
// Stride 1 on AVX-512; anything else takes the generic path.
#include <cstddef>
#include <cstdint>

#include "sgp/kernels/conv_columns.hpp"
#include "sgp/kernels/gemm_bf16.hpp"

namespace sgp::kernels {

#if defined(__AVX512F__)
namespace bf16_detail {

// Output pixels [first, first + 32) as runs, with the rows they read.
struct pixel_window {
    pixel_run runs[P];
    std::size_t count = 0, len = 0;  // runs, pixels (< 32 only at the end of the batch)
};
inline pixel_window window_of(const conv_geometry& g, std::size_t first, std::size_t len) {
    pixel_window w;
    w.len = len;
    w.count = pixel_runs(g, first, len, w.runs);
    return w;
}

// out[0, 32) = row (c, ky, kx) of the column matrix at the window's pixels (zeros past len).
inline void gather_row(const float* x, const conv_geometry& g, const pixel_window& win, const column_row& r,
                       float* out) {
    _mm512_store_ps(out, _mm512_setzero_ps());
    _mm512_store_ps(out + 16, _mm512_setzero_ps());
    const std::size_t plane = g.h * g.w;
    for (std::size_t i = 0; i < win.count; ++i) {
        const pixel_run& u = win.runs[i];
        const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(u.oy + r.ky) - static_cast<std::ptrdiff_t>(g.pad);
        if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h)) continue;
        const float* row = x + (r.c * g.n + u.n) * plane + static_cast<std::size_t>(iy) * g.w;
        // Pixel ox reads input column ox + kx - pad; valid for ox in [vlo, vhi).
        const std::ptrdiff_t shift = static_cast<std::ptrdiff_t>(r.kx) - static_cast<std::ptrdiff_t>(g.pad);
        for (std::size_t c0 = 0; c0 < u.len; c0 += 16) {
            const std::size_t n = std::min<std::size_t>(16, u.len - c0);
            const std::ptrdiff_t ox0 = static_cast<std::ptrdiff_t>(u.ox + c0);
            // Lanes l in [lo, hi) read row[ox0 + l + shift], inside [0, w).
            const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, -(ox0 + shift));
            const std::ptrdiff_t hi = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(n),
                                                               static_cast<std::ptrdiff_t>(g.w) - ox0 - shift);
            if (lo >= hi) continue;
            const __mmask16 m = static_cast<__mmask16>(((1u << (hi - lo)) - 1u) << lo);
            const __m512 v = _mm512_maskz_expandloadu_ps(m, row + (ox0 + shift + lo));
            _mm512_mask_storeu_ps(out + u.at + c0, static_cast<__mmask16>((1u << n) - 1u), v);
        }
    }
}

}  // namespace bf16_detail

// Rows [k0, k0 + kc) ((c, ky, kx)) x pixels [j0, j0 + nc) of the column matrix, nc <= 32.
inline void pack_bf16_panel(const conv_columns& s, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc,
                            float* scratch, std::uint32_t* out) {
    using namespace bf16_detail;
    if (s.g.stride != 1) return pack_bf16_panel_generic(s, k0, kc, j0, nc, scratch, out);
    const pixel_window win = window_of(s.g, j0, nc);
    alignas(64) float even[P], odd[P];
    column_row r(s.g, k0);
    const std::size_t steps = round_up(kc, KS) / KS;
    for (std::size_t st = 0; st < steps; ++st)
        for (std::size_t t = 0; t < KS / 2; ++t) {
            const std::size_t k = st * KS + 2 * t;
            if (k < kc) {
                gather_row(s.x, s.g, win, r, even);
                r.next(s.g);
            } else {
                std::fill_n(even, P, 0.f);
            }
            if (k + 1 < kc) {
                gather_row(s.x, s.g, win, r, odd);
                r.next(s.g);
            } else {
                std::fill_n(odd, P, 0.f);
            }
            for (std::size_t h = 0; h < 2; ++h)
                _mm512_store_si512(out + st * BLOCK + (h * 16 + t) * 16,
                                   bf16::pairs16(_mm512_load_ps(even + h * 16), _mm512_load_ps(odd + h * 16)));
        }
}

// Pixels [k0, k0 + kc) x rows [j0, j0 + nc) ((c, ky, kx)) of the transposed column matrix.
inline void pack_bf16_panel(const conv_columns_transposed& s, std::size_t k0, std::size_t kc, std::size_t j0,
                            std::size_t nc, float* scratch, std::uint32_t* out) {
    using namespace bf16_detail;
    if (s.g.stride != 1) return pack_bf16_panel_generic(s, k0, kc, j0, nc, scratch, out);
    const std::size_t steps = round_up(kc, KS) / KS;
    alignas(64) float vals[P];
    alignas(64) std::uint32_t pairs[16];
    for (std::size_t st = 0; st < steps; ++st) {
        const std::size_t first = k0 + st * KS, len = std::min(KS, kc - st * KS);
        const pixel_window win = window_of(s.g, first, len);
        std::uint32_t* blk = out + st * BLOCK;
        column_row r(s.g, j0);
        for (std::size_t j = 0; j < P; ++j) {
            std::uint32_t* col = blk + (j / 16 * 16) * 16 + j % 16;  // half j / 16, row t at + t * 16
            if (j >= nc) {
                for (std::size_t t = 0; t < 16; ++t) col[t * 16] = 0;
                continue;
            }
            gather_row(s.x, s.g, win, r, vals);
            r.next(s.g);
            _mm512_store_si512(pairs, bf16::pairs16_consecutive(_mm512_load_ps(vals), _mm512_load_ps(vals + 16)));
            for (std::size_t t = 0; t < 16; ++t) col[t * 16] = pairs[t];
        }
    }
}
#endif

}  // namespace sgp::kernels
