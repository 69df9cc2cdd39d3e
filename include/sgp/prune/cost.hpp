#pragma once
// What pruning a set of channels would cost, computed on widths before doing it.
#include <array>
#include <cstddef>

#include "sgp/core/cost.hpp"
#include "sgp/prune/groups.hpp"

namespace sgp::prune {

using sgp::cost;
using sgp::cost_at;

// The widths after giving group g `keep` channels, from the current widths w.
template <class Net>
void narrow(std::array<std::size_t, Net::layer_count + 1>& w, const channel_group& g, std::size_t keep) {
    w[g.producer + 1] = keep;
    for (std::size_t j = g.producer + 1; j < g.consumer; ++j)
        w[j + 1] = Net::kinds[j] == "flatten" ? w[j] * Net::shapes[j].plane() : w[j];
}

}  // namespace sgp::prune
