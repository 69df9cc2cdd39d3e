#pragma once
// Max and average pooling over one H x W plane (no padding). Max pooling's backward sends
// the gradient to the first maximum of each window, as PyTorch does.
#include <cstddef>

namespace sgp::kernels {

struct pool_geometry {
    std::size_t h, w, k, stride, oh, ow;
};

inline void max_pool_plane(const pool_geometry& g, const float* x, float* y) {
    for (std::size_t oy = 0; oy < g.oh; ++oy)
        for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const float* p = x + oy * g.stride * g.w + ox * g.stride;
            float m = p[0];
            for (std::size_t ky = 0; ky < g.k; ++ky)
                for (std::size_t kx = 0; kx < g.k; ++kx) m = p[ky * g.w + kx] > m ? p[ky * g.w + kx] : m;
            y[oy * g.ow + ox] = m;
        }
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
