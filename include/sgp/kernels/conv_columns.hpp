#pragma once
// The column matrix of a convolution (im2col's output) as a GEMM operand that is packed
// straight from the input map, never formed: one pass over the input instead of a write
// and a read of a matrix K*K times its size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#if defined(__AVX512F__) && !defined(SGP_NO_SIMD)
#include <immintrin.h>
#endif

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

#if defined(__AVX512F__) && !defined(SGP_NO_SIMD)
namespace columns_detail {

// The 16 x 16 transpose of r (row i becomes column i), in the usual four shuffle stages. The
// zero-masked forms with every lane set: GCC 12 warns inside the plain intrinsics (their
// _mm512_undefined_* source operand), and the all-ones mask costs nothing.
inline void transpose16(__m512 r[16]) {
    constexpr __mmask16 all = 0xFFFF;
    constexpr __mmask8 all_pd = 0xFF;
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
        t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
    }
    // Group G (rows 4G..4G+3): u[4G + k] holds, in 128-bit lane l, column k + 4l of those rows.
    for (int g = 0; g < 16; g += 4) {
        const __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]), c = _mm512_castps_pd(t[g + 2]),
                      d = _mm512_castps_pd(t[g + 3]);
        u[g] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all_pd, a, c));
        u[g + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all_pd, a, c));
        u[g + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all_pd, b, d));
        u[g + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all_pd, b, d));
    }
    auto lanes = [](__m512 x, __m512 y, auto imm) { return _mm512_maskz_shuffle_f32x4(all, x, y, imm.value); };
    using lo = std::integral_constant<int, 0x88>;  // 128-bit lanes 0 and 2 of each
    using hi = std::integral_constant<int, 0xDD>;  // lanes 1 and 3
    for (int k = 0; k < 4; ++k) {
        const __m512 a = lanes(u[k], u[k + 4], lo{}), b = lanes(u[k], u[k + 4], hi{});
        const __m512 c = lanes(u[k + 8], u[k + 12], lo{}), d = lanes(u[k + 8], u[k + 12], hi{});
        r[k] = lanes(a, c, lo{});
        r[k + 8] = lanes(a, c, hi{});
        r[k + 4] = lanes(b, d, lo{});
        r[k + 12] = lanes(b, d, hi{});
    }
}

// Row (c, ky, kx) of the column matrix at up to 16 pixels (the runs of a window), stride 1:
// each run is one masked load (not an expanding one: vexpandps from memory is slow on Zen);
// padding lanes and lanes past the window stay zero.
inline __m512 gather16(const float* x, const conv_geometry& g, const pixel_run* runs, std::size_t count,
                       const column_row& r) {
    __m512 v = _mm512_setzero_ps();
    const std::size_t plane = g.h * g.w;
    const std::ptrdiff_t shift = static_cast<std::ptrdiff_t>(r.kx) - static_cast<std::ptrdiff_t>(g.pad);
    for (std::size_t i = 0; i < count; ++i) {
        const pixel_run& u = runs[i];
        const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(u.oy + r.ky) - static_cast<std::ptrdiff_t>(g.pad);
        if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.h)) continue;
        const float* row = x + (r.c * g.n + u.n) * plane + static_cast<std::size_t>(iy) * g.w;
        // Pixel ox reads input column ox + shift; lanes [at + lo, at + hi) are inside the map.
        const std::ptrdiff_t ox = static_cast<std::ptrdiff_t>(u.ox);
        const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, -(ox + shift));
        const std::ptrdiff_t hi =
            std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(u.len), static_cast<std::ptrdiff_t>(g.w) - ox - shift);
        if (lo >= hi) continue;
        const auto m = static_cast<__mmask16>(((1u << (hi - lo)) - 1u) << (u.at + static_cast<std::size_t>(lo)));
        // Lane l reads row[ox + shift + l - at]; masked-off lanes are never read (no fault), so
        // the address may start before the row (formed as an integer, not a pointer).
        const auto base = reinterpret_cast<std::uintptr_t>(row) +
                          static_cast<std::uintptr_t>(ox + shift - static_cast<std::ptrdiff_t>(u.at)) * sizeof(float);
        v = _mm512_mask_loadu_ps(v, m, reinterpret_cast<const void*>(base));
    }
    return v;
}

}  // namespace columns_detail
#endif

// Rows [k0, k0+kc) (pixels) x columns [j0, j0+nc) (rows of im2col) into NR-column panels.
inline void pack_b(const conv_columns_transposed& s, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc,
                   float* out) {
    constexpr std::size_t NR = gemm_detail::NR;
    const auto& g = s.g;
#if defined(__AVX512F__) && !defined(SGP_NO_SIMD)
    // Stride 1: 16 pixels x 16 columns at a time, gathered as 16 rows of the column matrix and
    // transposed in registers, written as whole vectors (the scalar path below stores every
    // float NR floats from the last: 0.5-1.7 ns per element, as much as the products).
    if constexpr (NR % 16 == 0) {
        if (g.stride == 1) {
            namespace cd = columns_detail;
            // The pixel runs of every block of 16 pixels, found once. Then column blocks outer,
            // pixel blocks inner: a column block reads a few channels' rows in turn (pixel
            // blocks outer read every channel at the same offset: the channels are a power of
            // two apart at batch 64 and alias in L1).
            constexpr std::size_t blocks_max = gemm_detail::max_packed_rows / 16;
            if (kc > gemm_detail::max_packed_rows) fail("conv_columns", "a panel of more than max_packed_rows pixels");
            pixel_run runs[blocks_max][16];
            std::size_t counts[blocks_max];
            const std::size_t blocks = (kc + 15) / 16;
            for (std::size_t b = 0; b < blocks; ++b)
                counts[b] = pixel_runs(g, k0 + b * 16, std::min<std::size_t>(16, kc - b * 16), runs[b]);
            for (std::size_t jb = 0; jb < (nc + NR - 1) / NR * NR; jb += 16) {
                float* panel = out + jb / NR * NR * kc + jb % NR;
                const column_row first(g, j0 + std::min(jb, nc));
                for (std::size_t b = 0; b < blocks; ++b) {
                    __m512 r[16];
                    column_row row = first;
                    for (std::size_t t = 0; t < 16; ++t, row.next(g))
                        r[t] = jb + t < nc ? cd::gather16(s.x, g, runs[b], counts[b], row) : _mm512_setzero_ps();
                    cd::transpose16(r);
                    const std::size_t len = std::min<std::size_t>(16, kc - b * 16);
                    for (std::size_t i = 0; i < len; ++i) _mm512_storeu_ps(panel + (b * 16 + i) * NR, r[i]);
                }
            }
            return;
        }
    }
#endif
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
