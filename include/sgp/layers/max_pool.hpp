#pragma once
// K x K max pooling with stride S (default K), no padding.
#include <algorithm>
#include <string>
#include <string_view>

#include "sgp/kernels/pool.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

namespace detail {
// Shared by max_pool and avg_pool: shape rules and the per-plane loop.
template <std::size_t K, std::size_t S, shape In, bool Max>
class pool_layer : public stateless_layer {
    static_assert(!In.flat, "pooling: its input is a flat feature vector (after flatten); pools need a C x H x W map");
    static_assert(K <= In.h && K <= In.w, "pooling: the window is larger than the feature map it pools");

public:
    static constexpr std::string_view kind = Max ? "max_pool" : "avg_pool";
    static constexpr shape in_shape = In;
    static constexpr shape out_shape{In.c, (In.h - K) / S + 1, (In.w - K) / S + 1, false};
    static constexpr std::size_t kernel = K, stride = S;
    static constexpr channel_role role = channel_role::passes;
    std::string declaration() const {
        return std::string("sgp::layers::") + (Max ? "max_pool<" : "avg_pool<") + std::to_string(K) + ", " +
               std::to_string(S) + ">";
    }
    template <class Q>
    void fold_int8(Q& q, std::size_t id) {
        if constexpr (Max)
            q.max_pool(id, K, S, out_shape.h, out_shape.w);
        else
            q.avg_pool(id, K, S, out_shape.h, out_shape.w);
    }

    void set_input_channels(std::size_t c) { c_ = c; }
    std::size_t input_channels() const { return c_; }
    std::size_t out_channels() const { return c_; }

    void forward(run_context& cx, const float* x, float* y, std::size_t n) {
        parallel_for(cx.pool, c_ * n, 1, [&](std::size_t p0, std::size_t p1) {
            for (std::size_t p = p0; p < p1; ++p) {
                if constexpr (Max)
                    kernels::max_pool_plane(geo, x + p * In.plane(), y + p * out_shape.plane());
                else
                    kernels::avg_pool_plane(geo, x + p * In.plane(), y + p * out_shape.plane());
            }
        });
    }
    void backward(run_context& cx, const float* x, const float*, const float* dy, float* dx, std::size_t n) {
        if (!dx) return;
        parallel_for(cx.pool, c_ * n, 1, [&](std::size_t p0, std::size_t p1) {
            std::fill(dx + p0 * In.plane(), dx + p1 * In.plane(), 0.f);
            for (std::size_t p = p0; p < p1; ++p) {
                if constexpr (Max)
                    kernels::max_pool_plane_backward(geo, x + p * In.plane(), dy + p * out_shape.plane(),
                                                     dx + p * In.plane());
                else
                    kernels::avg_pool_plane_backward(geo, dy + p * out_shape.plane(), dx + p * In.plane());
            }
        });
    }

private:
    static constexpr kernels::pool_geometry geo{In.h, In.w, K, S, out_shape.h, out_shape.w};
    std::size_t c_ = In.c;
};
}  // namespace detail

template <std::size_t K, std::size_t S = K>
struct max_pool {
    static_assert(K > 0 && S > 0, "max_pool<K, S>: window and stride must be at least 1");
    template <shape In>
    using bind = detail::pool_layer<K, S, In, true>;
};

}  // namespace sgp::layers
