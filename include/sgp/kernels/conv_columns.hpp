#pragma once
// The column matrix of a convolution (im2col's output) as a GEMM operand that is packed
// straight from the input map, never formed: one pass over the input instead of a write
// and a read of a matrix K*K times its size.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "sgp/core/simd.hpp"
#include "sgp/kernels/gemm.hpp"
#include "sgp/kernels/im2col.hpp"

namespace sgp::kernels {

namespace detail {
// Short copies and fills, inline: a library call per run of a few floats costs more than the
// run. A ragged end is one more vector overlapping the previous one, not a scalar loop.
inline void copy_short(const float* src, std::size_t n, float* dst) {
    constexpr std::size_t W = simd::width;
    if (n < W) {
        for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
        return;
    }
    for (std::size_t i = 0; i + W <= n; i += W) simd::vec::load_unaligned(src + i).store_unaligned(dst + i);
    if (n % W) simd::vec::load_unaligned(src + n - W).store_unaligned(dst + n - W);
}
inline void zero_short(float* dst, std::size_t n) {
    constexpr std::size_t W = simd::width;
    if (n < W) {
        for (std::size_t i = 0; i < n; ++i) dst[i] = 0.f;
        return;
    }
    for (std::size_t i = 0; i + W <= n; i += W) simd::vec(0.f).store_unaligned(dst + i);
    if (n % W) simd::vec(0.f).store_unaligned(dst + n - W);
}
}  // namespace detail

struct conv_columns {
    const float* x;  // input [C][N][H][W]
    conv_geometry g;
};

// Rows [k0, k0+kc) x columns [j0, j0+nc) of the column matrix into NR-column panels, zero
// padded: the same values im2col writes. Found by gemm_range through argument lookup.
inline void pack_b(const conv_columns& s, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc, float* out) {
    constexpr std::size_t NR = gemm_detail::NR;
    const auto& g = s.g;
    const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
    // A panel's columns as runs within one output row: (image, row, first column, length).
    struct run {
        std::size_t n, oy, ox, len, at;
    };
    run runs[NR];
    for (std::size_t jr = 0; jr < nc; jr += NR) {
        const std::size_t nr = std::min(NR, nc - jr);
        float* panel = out + jr * kc;
        std::size_t count = 0;
        for (std::size_t j = j0 + jr, at = 0; at < nr;) {
            const std::size_t n = j / plane_out, oy = j % plane_out / g.ow, ox = j % g.ow;
            const std::size_t len = std::min(g.ow - ox, nr - at);
            runs[count++] = {n, oy, ox, len, at};
            j += len, at += len;
        }
        // (c, ky, kx) of row k0, then stepped along: no divisions per row.
        std::size_t c = k0 / (g.k * g.k), ky = k0 / g.k % g.k, kx = k0 % g.k;
        for (std::size_t k = 0; k < kc; ++k) {
            const auto [lo, hi] = valid_columns(g.ow, g.w, g.stride, kx, g.pad);
            float* dst = panel + k * NR;
            detail::zero_short(dst + nr, NR - nr);
            for (std::size_t i = 0; i < count; ++i) {
                const run& u = runs[i];
                float* d = dst + u.at;
                const std::ptrdiff_t iy =
                    static_cast<std::ptrdiff_t>(u.oy * g.stride + ky) - static_cast<std::ptrdiff_t>(g.pad);
                const std::size_t b = std::clamp(lo, u.ox, u.ox + u.len), e = std::clamp(hi, b, u.ox + u.len);
                if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) || b == e) {
                    detail::zero_short(d, u.len);
                    continue;
                }
                detail::zero_short(d, b - u.ox);
                const float* row =
                    s.x + (c * g.n + u.n) * plane_in + static_cast<std::size_t>(iy) * g.w + b * g.stride + kx - g.pad;
                if (g.stride == 1)
                    detail::copy_short(row, e - b, d + (b - u.ox));
                else
                    for (std::size_t ox = b; ox < e; ++ox) d[ox - u.ox] = row[(ox - b) * g.stride];
                detail::zero_short(d + (e - u.ox), u.ox + u.len - e);
            }
            if (++kx == g.k) {
                kx = 0;
                if (++ky == g.k) ky = 0, ++c;
            }
        }
    }
}

// The column matrix transposed ([pixels][C*K*K]), the right operand of a weight gradient
// dW = dY * col^T, packed from the input likewise.
struct conv_columns_transposed {
    const float* x;  // input [C][N][H][W]
    conv_geometry g;
};

// Rows [k0, k0+kc) (pixels) x columns [j0, j0+nc) (rows of im2col) into NR-column panels.
inline void pack_b(const conv_columns_transposed& s, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc,
                   float* out) {
    constexpr std::size_t NR = gemm_detail::NR;
    const auto& g = s.g;
    const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
    // The pixel range as runs within one output row (at most KC / ow + 2 of them).
    struct run {
        std::size_t n, oy, ox, len, at;
    };
    thread_local std::vector<run> runs;
    runs.clear();
    for (std::size_t p = k0, at = 0; at < kc;) {
        const std::size_t n = p / plane_out, oy = p % plane_out / g.ow, ox = p % g.ow;
        const std::size_t len = std::min(g.ow - ox, kc - at);
        runs.push_back({n, oy, ox, len, at});
        p += len, at += len;
    }
    for (std::size_t jr = 0; jr < nc; jr += NR) {
        const std::size_t nr = std::min(NR, nc - jr);
        float* panel = out + jr * kc;
        std::size_t r = j0 + jr, c = r / (g.k * g.k), ky = r / g.k % g.k, kx = r % g.k;
        for (std::size_t j = 0; j < nr; ++j) {
            const auto [lo, hi] = valid_columns(g.ow, g.w, g.stride, kx, g.pad);
            for (const run& u : runs) {
                float* d = panel + u.at * NR + j;
                const std::ptrdiff_t iy =
                    static_cast<std::ptrdiff_t>(u.oy * g.stride + ky) - static_cast<std::ptrdiff_t>(g.pad);
                const std::size_t b = std::clamp(lo, u.ox, u.ox + u.len), e = std::clamp(hi, b, u.ox + u.len);
                if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) || b == e) {
                    for (std::size_t i = 0; i < u.len; ++i) d[i * NR] = 0.f;
                    continue;
                }
                for (std::size_t i = 0; i < b - u.ox; ++i) d[i * NR] = 0.f;
                const float* row =
                    s.x + (c * g.n + u.n) * plane_in + static_cast<std::size_t>(iy) * g.w + b * g.stride + kx - g.pad;
                for (std::size_t ox = b; ox < e; ++ox) d[(ox - u.ox) * NR] = row[(ox - b) * g.stride];
                for (std::size_t i = e - u.ox; i < u.len; ++i) d[i * NR] = 0.f;
            }
            if (++kx == g.k) {
                kx = 0;
                if (++ky == g.k) ky = 0, ++c;
            }
        }
        for (std::size_t k = 0; k < kc; ++k) std::fill(panel + k * NR + nr, panel + k * NR + NR, 0.f);
    }
}

}  // namespace sgp::kernels
