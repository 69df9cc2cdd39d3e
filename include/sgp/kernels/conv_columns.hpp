#pragma once
// The column matrix of a convolution (im2col's output) as a GEMM operand that is packed
// straight from the input map, never formed: one pass over the input instead of a write
// and a read of a matrix K*K times its size.
#include <algorithm>
#include <cstddef>

#include "sgp/core/error.hpp"
#include "sgp/kernels/copy.hpp"
#include "sgp/kernels/gemm.hpp"
#include "sgp/kernels/im2col.hpp"

namespace sgp::kernels {

// A range of output pixels (columns of the column matrix) as runs within one output row.
struct pixel_run {
    std::size_t n, oy, ox, len, at;  // image, row, first column, length, offset in the range
};
// Splits pixels [first, first + count) into runs; returns how many (at most count).
inline std::size_t pixel_runs(const conv_geometry& g, std::size_t first, std::size_t count, pixel_run* out) {
    const std::size_t plane = g.oh * g.ow;
    std::size_t runs = 0;
    for (std::size_t p = first, at = 0; at < count;) {
        const std::size_t ox = p % g.ow, len = std::min(g.ow - ox, count - at);
        out[runs++] = {p / plane, p % plane / g.ow, ox, len, at};
        p += len, at += len;
    }
    return runs;
}

// What run u of row r reads: input columns for pixels [b, e) of the run (b - u.ox leading
// and the rest trailing zeros), starting at `src` with stride g.stride; src is null when the
// whole run is padding.
struct run_source {
    const float* src;
    std::size_t b, e;
};
inline run_source source_of(const float* x, const conv_geometry& g, const pixel_run& u, const column_row& r,
                            valid_span cols) {
    const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(u.oy * g.stride + r.ky) - static_cast<std::ptrdiff_t>(g.pad);
    const std::size_t b = std::clamp(cols.lo, u.ox, u.ox + u.len), e = std::clamp(cols.hi, b, u.ox + u.len);
    if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h) || b == e) return {nullptr, u.ox, u.ox};
    return {x + (r.c * g.n + u.n) * g.h * g.w + static_cast<std::size_t>(iy) * g.w + b * g.stride + r.kx - g.pad, b, e};
}

struct conv_columns {
    const float* x;  // input [C][N][H][W]
    conv_geometry g;
};

// Rows [k0, k0+kc) x columns [j0, j0+nc) of the column matrix into NR-column panels, zero
// padded: the same values im2col writes. Found by gemm_range through argument lookup.
inline void pack_b(const conv_columns& s, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc, float* out) {
    constexpr std::size_t NR = gemm_detail::NR;
    const auto& g = s.g;
    pixel_run runs[NR];
    for (std::size_t jr = 0; jr < nc; jr += NR) {
        const std::size_t nr = std::min(NR, nc - jr);
        float* panel = out + jr * kc;
        const std::size_t count = pixel_runs(g, j0 + jr, nr, runs);
        column_row row(g, k0);
        for (std::size_t k = 0; k < kc; ++k, row.next(g)) {
            const auto cols = valid_columns(g.ow, g.w, g.stride, row.kx, g.pad);
            float* dst = panel + k * NR;
            detail::zero_short(dst + nr, NR - nr);
            for (std::size_t i = 0; i < count; ++i) {
                const pixel_run& u = runs[i];
                float* d = dst + u.at;
                const auto [src, b, e] = source_of(s.x, g, u, row, cols);
                if (!src) {
                    detail::zero_short(d, u.len);
                    continue;
                }
                detail::zero_short(d, b - u.ox);
                if (g.stride == 1)
                    detail::copy_short(src, e - b, d + (b - u.ox));
                else
                    for (std::size_t ox = b; ox < e; ++ox) d[ox - u.ox] = src[(ox - b) * g.stride];
                detail::zero_short(d + (e - u.ox), u.ox + u.len - e);
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
    pixel_run runs[gemm_detail::max_packed_rows];  // kc pixels: at most kc runs
    if (kc > gemm_detail::max_packed_rows) fail("conv_columns", "a panel of more than max_packed_rows pixels");
    const std::size_t count = pixel_runs(g, k0, kc, runs);
    for (std::size_t jr = 0; jr < nc; jr += NR) {
        const std::size_t nr = std::min(NR, nc - jr);
        float* panel = out + jr * kc;
        column_row row(g, j0 + jr);
        for (std::size_t j = 0; j < nr; ++j, row.next(g)) {
            const auto cols = valid_columns(g.ow, g.w, g.stride, row.kx, g.pad);
            for (std::size_t i = 0; i < count; ++i) {
                const pixel_run& u = runs[i];
                float* d = panel + u.at * NR + j;
                const auto [src, b, e] = source_of(s.x, g, u, row, cols);
                for (std::size_t p = u.ox; p < b; ++p) d[(p - u.ox) * NR] = 0.f;
                for (std::size_t ox = b; ox < e; ++ox) d[(ox - u.ox) * NR] = src[(ox - b) * g.stride];
                for (std::size_t p = e; p < u.ox + u.len; ++p) d[(p - u.ox) * NR] = 0.f;
            }
        }
        for (std::size_t k = 0; k < kc; ++k) std::fill(panel + k * NR + nr, panel + k * NR + NR, 0.f);
    }
}

}  // namespace sgp::kernels
