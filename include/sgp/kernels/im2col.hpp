#pragma once
// im2col / col2im for activations in sgp's channel-major layout [C][N][H][W]. The column
// matrix has one row per (channel, ky, kx) and one column per (image, oy, ox), so a whole
// batch's convolution is a single GEMM: Y[O][N*Ho*Wo] = W[O][C*K*K] * col.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "sgp/core/parallel.hpp"
#include "sgp/kernels/copy.hpp"

namespace sgp::kernels {

// The output columns ox whose input column ox * stride + kx - pad lies inside [0, w).
struct valid_span {
    std::size_t lo, hi;  // [lo, hi), lo <= hi
};
inline valid_span valid_columns(std::size_t ow, std::size_t w, std::size_t stride, std::size_t kx, std::size_t pad) {
    // ox * stride + kx >= pad  and  ox * stride + kx < w + pad (no division at stride 1: this
    // runs once per row of a column matrix)
    auto ceil_div = [stride](std::size_t a) { return stride == 1 ? a : (a + stride - 1) / stride; };
    const std::size_t lo = kx >= pad ? 0 : ceil_div(pad - kx);
    const std::size_t hi = w + pad > kx ? std::min(ow, ceil_div(w + pad - kx)) : 0;
    return {std::min(lo, hi), hi};
}

struct conv_geometry {
    std::size_t n, c, h, w;  // batch, active input channels, input map
    std::size_t k, stride, pad;
    std::size_t oh, ow;  // output map
    std::size_t rows() const { return c * k * k; }
    std::size_t cols() const { return n * oh * ow; }
    // A 1x1, stride-1, unpadded convolution reads its input as the column matrix itself.
    bool identity() const { return k == 1 && stride == 1 && pad == 0; }
};

// A row (c, ky, kx) of the column matrix, stepped along without divisions.
struct column_row {
    std::size_t c, ky, kx;
    column_row(const conv_geometry& g, std::size_t r) : c(r / (g.k * g.k)), ky(r / g.k % g.k), kx(r % g.k) {}
    void next(const conv_geometry& g) {
        if (++kx == g.k) {
            kx = 0;
            if (++ky == g.k) ky = 0, ++c;
        }
    }
};

inline void im2col(const conv_geometry& g, const float* x, float* col, thread_pool* pool) {
    const std::size_t plane = g.h * g.w, cols = g.cols();
    parallel_for(pool, g.rows(), 1, [&](std::size_t r0, std::size_t r1) {
        column_row row(g, r0);
        for (std::size_t r = r0; r < r1; ++r, row.next(g)) {
            const std::size_t c = row.c, ky = row.ky, kx = row.kx;
            const auto [lo, hi] = valid_columns(g.ow, g.w, g.stride, kx, g.pad);
            float* out = col + r * cols;
            for (std::size_t n = 0; n < g.n; ++n) {
                const float* src = x + (c * g.n + n) * plane;
                for (std::size_t oy = 0; oy < g.oh; ++oy, out += g.ow) {
                    const std::ptrdiff_t iy =
                        static_cast<std::ptrdiff_t>(oy * g.stride + ky) - static_cast<std::ptrdiff_t>(g.pad);
                    if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h)) {
                        detail::zero_short(out, g.ow);
                        continue;
                    }
                    // Columns outside the map are padding; the rest is a (strided) copy of one row.
                    detail::zero_short(out, lo);
                    if (lo < hi) {
                        const float* row = src + static_cast<std::size_t>(iy) * g.w + lo * g.stride + kx - g.pad;
                        if (g.stride == 1)
                            detail::copy_short(row, hi - lo, out + lo);
                        else
                            for (std::size_t ox = lo; ox < hi; ++ox) out[ox] = row[(ox - lo) * g.stride];
                    }
                    detail::zero_short(out + hi, g.ow - hi);
                }
            }
        }
    });
}

// dx = sum of the column gradients over the positions each input pixel was read at.
// Threads split input channels, so no two threads write the same pixel.
inline void col2im(const conv_geometry& g, const float* col, float* dx, thread_pool* pool) {
    const std::size_t plane = g.h * g.w, cols = g.cols();
    parallel_for(pool, g.c, 1, [&](std::size_t c0, std::size_t c1) {
        std::fill(dx + c0 * g.n * plane, dx + c1 * g.n * plane, 0.f);
        for (std::size_t c = c0; c < c1; ++c)
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx) {
                    const auto [lo, hi] = valid_columns(g.ow, g.w, g.stride, kx, g.pad);
                    const float* in = col + ((c * g.k + ky) * g.k + kx) * cols;
                    for (std::size_t n = 0; n < g.n; ++n) {
                        float* dst = dx + (c * g.n + n) * plane;
                        for (std::size_t oy = 0; oy < g.oh; ++oy, in += g.ow) {
                            const std::ptrdiff_t iy =
                                static_cast<std::ptrdiff_t>(oy * g.stride + ky) - static_cast<std::ptrdiff_t>(g.pad);
                            if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) || lo == hi) continue;
                            float* row = dst + static_cast<std::size_t>(iy) * g.w + lo * g.stride + kx - g.pad;
                            for (std::size_t ox = lo; ox < hi; ++ox) row[(ox - lo) * g.stride] += in[ox];
                        }
                    }
                }
    });
}

}  // namespace sgp::kernels
