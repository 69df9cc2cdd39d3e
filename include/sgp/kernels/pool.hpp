#pragma once
// Max and average pooling over one H x W plane (no padding). Max pooling's backward sends
// the gradient to the first maximum of each window, as PyTorch does.
#include <cstddef>

#include "sgp/kernels/avx512_taps.hpp"
#if SGP_AVX512_TAPS
#define SGP_POOL_AVX512 1
#endif

namespace sgp::kernels {

struct pool_geometry {
    std::size_t h, w, k, stride, oh, ow;
};

// Any window and stride, one output at a time.
inline void max_pool_plane_scalar(const pool_geometry& g, const float* x, float* y) {
    for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const float* p = x + oy * g.stride * g.w + ox * g.stride;
            float m = p[0];
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx) m = p[ky * g.w + kx] > m ? p[ky * g.w + kx] : m;
            y[oy * g.ow + ox] = m;
        }
}

#if SGP_POOL_AVX512
// 2x2 windows with stride 2 (VGG's pools) on rows of at least 8 pixels: per output row, the two
// input rows' maximum in whole vectors, then the maximum of its even and odd columns gathered by
// two permutes; 16 outputs per step where the scalar loop takes 16 iterations of 4 compares
// (measured: the pools were 7 % of the pruned VGG13-BN's batch-1 time). The same maximum for
// every input but NaN (the scalar loop keeps the first of a window's NaNs or numbers in its
// order; a vector maximum may return either), and it may return -0 where the scalar returns +0.
inline void max_pool_2x2_plane(const pool_geometry& g, const float* x, float* y) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    using avx512_taps::first_lanes;
    auto max = [](__m512 a, __m512 b) { return _mm512_maskz_max_ps(0xFFFF, a, b); };  // GCC 12 warns in the plain one
    const std::size_t cols = 2 * g.ow;
    for (std::size_t oy = 0; oy < g.oh; ++oy) {
        const float* r0 = x + 2 * oy * g.w;
        const float* r1 = r0 + g.w;
        float* out = y + oy * g.ow;
        for (std::size_t i = 0; i < cols; i += 32) {
            const std::size_t left = cols - i;
            const __mmask16 ma = first_lanes(left), mb = first_lanes(left > 16 ? left - 16 : 0);
            const __m512 a = max(_mm512_maskz_loadu_ps(ma, r0 + i), _mm512_maskz_loadu_ps(ma, r1 + i));
            const __m512 b = max(_mm512_maskz_loadu_ps(mb, r0 + i + 16), _mm512_maskz_loadu_ps(mb, r1 + i + 16));
            const __m512 m = max(_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b));
            _mm512_mask_storeu_ps(out + i / 2, first_lanes(left / 2), m);
        }
    }
}
#endif

// Whether max_pool_2x2_plane serves the geometry.
constexpr bool max_pool_2x2_applies(const pool_geometry& g) {
#if SGP_POOL_AVX512
    return g.k == 2 && g.stride == 2 && g.w >= 8;
#else
    (void)g;
    return false;
#endif
}

// y = the max pool of one plane: by vectors where max_pool_2x2_plane serves the geometry.
inline void max_pool_plane(const pool_geometry& g, const float* x, float* y) {
#if SGP_POOL_AVX512
    if (max_pool_2x2_applies(g)) return max_pool_2x2_plane(g, x, y);
#endif
    max_pool_plane_scalar(g, x, y);
}

// dx must be zeroed by the caller (windows may overlap when stride < k).
inline void max_pool_plane_backward(const pool_geometry& g, const float* x, const float* dy, float* dx) {
    for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const std::size_t base = oy * g.stride * g.w + ox * g.stride;
            std::size_t best = base;
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx) {
                    const std::size_t i = base + ky * g.w + kx;
                    if (x[i] > x[best]) best = i;
                }
            dx[best] += dy[oy * g.ow + ox];
        }
}

inline void avg_pool_plane(const pool_geometry& g, const float* x, float* y) {
    const float inv = 1.f / static_cast<float>(g.k * g.k);
    for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const float* p = x + oy * g.stride * g.w + ox * g.stride;
            float s = 0;
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx) s += p[ky * g.w + kx];
            y[oy * g.ow + ox] = s * inv;
        }
}

// dx must be zeroed by the caller.
inline void avg_pool_plane_backward(const pool_geometry& g, const float* dy, float* dx) {
    const float inv = 1.f / static_cast<float>(g.k * g.k);
    for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const float d = dy[oy * g.ow + ox] * inv;
            float* p = dx + oy * g.stride * g.w + ox * g.stride;
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx) p[ky * g.w + kx] += d;
        }
}

}  // namespace sgp::kernels
