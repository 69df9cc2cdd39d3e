#pragma once
// K x K average pooling with stride S (default K), no padding.
#include "sgp/layers/max_pool.hpp"

namespace sgp::layers {

template <std::size_t K, std::size_t S = K>
struct avg_pool {
    static_assert(K > 0 && S > 0, "avg_pool<K, S>: window and stride must be at least 1");
    template <shape In>
    using bind = detail::pool_layer<K, S, In, false>;
};

}  // namespace sgp::layers
