#pragma once
// The controls a pruning result is judged against, each at a given parameter budget:
//   - L1-norm filter pruning (Li et al., ICLR 2017): one rate for every layer, the filters
//     of smallest L1 norm removed from a trained network, which is then fine-tuned;
//   - uniform width scaling: every layer keeps the same fraction of its declared channels,
//     trained from scratch;
//   - a pruned architecture trained from scratch (Liu et al., "Rethinking the Value of
//     Network Pruning", ICLR 2019): the plan's widths with fresh weights.
// Network Slimming's global threshold is global_for_budget (prune.hpp).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sgp/prune/plan.hpp"
#include "sgp/prune/prune.hpp"
#include "sgp/prune/rules.hpp"
#include "sgp/prune/scores.hpp"

namespace sgp::prune {

// Removes, from every group, the same fraction of the filters with the smallest L1 norm,
// the smallest fraction that brings the network to at most `parameters` parameters.
template <class Net>
report l1_filter_pruning(Net& net, std::size_t parameters, batch_loader& calib, const options& o = {},
                         thread_pool* pool = nullptr) {
    const auto stats = collect_stats(net, scores::filter_l1{}, calib, pool, 1, o.residual);
    const auto rule = rule_for_budget<rules::uniform_fraction>(net, stats, parameters, o);
    return prune_with(net, stats, rule, o, scores::filter_l1::name);
}

// Narrows every group of a network to the same fraction of its channels (the largest that
// fits `parameters`) and gives it fresh weights drawn by `seed` at those widths.
template <class Net>
report uniform_width(Net& net, std::size_t parameters, std::uint64_t seed, const options& o = {}) {
    const auto w = net.class_widths();
    std::vector<group_stats> stats;
    for (const auto& g : channel_groups<Net>(o.residual)) {
        group_stats s;
        s.group = g;
        s.channels = w[g.cls];
        s.score.assign(s.channels, 0.f);  // which channels go does not matter: the weights are redrawn
        stats.push_back(std::move(s));
    }
    const auto rule = rule_for_budget<rules::uniform_fraction>(net, stats, parameters, o);
    auto r = prune_with(net, stats, rule, o, "none");
    net.init(seed);
    return r;
}

// The architecture of plan `p` with fresh weights drawn by `seed` at its widths (conv2d and
// linear draw at their active fan-in), as if it had been declared that narrow.
template <class Net>
void from_scratch(Net& net, const plan& p, std::uint64_t seed) {
    apply(net, p);
    net.init(seed);
}

}  // namespace sgp::prune
