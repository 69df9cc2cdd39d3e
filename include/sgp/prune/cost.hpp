#pragma once
// What pruning a set of channels would cost, computed on widths before doing it.
#include <cstddef>
#include <vector>

#include "sgp/core/cost.hpp"
#include "sgp/core/graph.hpp"
#include "sgp/prune/groups.hpp"

namespace sgp::prune {

using sgp::cost;

// The class widths after giving group g `keep` channels, from the current widths w
// (sequential::class_widths()).
template <class Net>
void narrow(std::vector<std::size_t>& w, const channel_group& g, std::size_t keep) {
    const auto& d = Net::graph();
    for (std::size_t c = 0; c < w.size(); ++c)
        if (d.root(c) == g.cls) w[c] = keep;
}

// Parameters and multiply-adds of Net with every class at widths w.
template <class Net>
cost cost_at(const std::vector<std::size_t>& w) {
    return Net::graph().cost_at(w);
}

}  // namespace sgp::prune
