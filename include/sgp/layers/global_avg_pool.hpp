#pragma once
// Average over the whole H x W map: C x H x W -> C x 1 x 1.
#include "sgp/layers/max_pool.hpp"

namespace sgp::layers {

struct global_avg_pool {
    template <shape In>
    class bind : public detail::pool_layer<In.h, 1, In, false> {
        static_assert(In.h == In.w, "global_avg_pool: sgp pools square maps only");

    public:
        static constexpr std::string_view kind = "global_avg_pool";
        std::string declaration() const { return "sgp::layers::global_avg_pool"; }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.avg_pool(id, In.h, 1, 1, 1);
        }
    };
};

}  // namespace sgp::layers
