#pragma once
// Pruning rules: how many channels of each group to remove, given the groups' scores and
// activation sparsity. Each rule is a small type with
//     std::vector<std::size_t> remove_counts(const std::vector<group_stats>&) const;
// and removal always takes the lowest-scored channels. The formulas are in docs/pruning.md.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "sgp/prune/scores.hpp"

namespace sgp::prune::rules {

namespace detail {
inline std::vector<float> sorted(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v;
}
}  // namespace detail

// Where the activation sparsity of a group is measured. The source's code measures the
// input of the next layer; when a max pool sits between, the pool keeps the largest of each
// window and almost no zeros survive (VGG's last blocks: s < 0.01), so the rule never prunes
// those groups. At the ReLU output the same channels show the sparsity the pool hides.
enum class sparsity_site { consumer_input, relu_output };

// The source work's layer-wise rule. With s the fraction of zeros in the activations the
// group feeds (post-ReLU, over the calibration set) and C its channels:
// k = floor(C s), halved to floor(C s / 2) when k >= C/2, nothing when s < cutoff; every
// channel whose score is <= the k-th smallest score is removed (k + 1 with distinct scores).
struct activation_sparsity {
    double cutoff = 0.1;
    sparsity_site at = sparsity_site::consumer_input;
    static constexpr const char* name = "activation_sparsity";

    static double sparsity(const group_stats& g, sparsity_site at) {
        return at == sparsity_site::relu_output ? g.relu_zero_fraction : g.next_zero_fraction;
    }
    std::vector<std::size_t> remove_counts(const std::vector<group_stats>& groups) const {
        std::vector<std::size_t> out;
        for (const auto& g : groups) {
            const double s = sparsity(g, at);
            const std::size_t C = g.channels;
            if (C == 0 || s < cutoff) {
                out.push_back(0);
                continue;
            }
            auto k = static_cast<std::size_t>(std::floor(static_cast<double>(C) * s));
            if (2 * k >= C) k = static_cast<std::size_t>(std::floor(0.5 * static_cast<double>(C) * s));
            k = std::min(k, C - 1);
            const float t = detail::sorted(g.score)[k];
            out.push_back(static_cast<std::size_t>(
                std::count_if(g.score.begin(), g.score.end(), [&](float x) { return x <= t; })));
        }
        return out;
    }
};

// The source report names its method "sparsity-gradient-based": this is the rule of its code.
using sparsity_gradient = activation_sparsity;

// Knee of the sorted-score curve: the largest jump between consecutive sorted scores
// separates the channels to remove (below it) from those to keep.
struct knee {
    static constexpr const char* name = "knee";

    std::vector<std::size_t> remove_counts(const std::vector<group_stats>& groups) const {
        std::vector<std::size_t> out;
        for (const auto& g : groups) {
            if (g.channels < 2) {
                out.push_back(0);
                continue;
            }
            const auto v = detail::sorted(g.score);
            std::size_t at = 0;
            for (std::size_t i = 1; i + 1 < v.size(); ++i)
                if (v[i + 1] - v[i] > v[at + 1] - v[at]) at = i;
            out.push_back(at + 1);
        }
        return out;
    }
};

// Cumulative energy (Optimal Thresholding, Ye et al. 2020): remove the smallest scores whose
// sum of squares stays within `fraction` of the group's total.
struct energy {
    double fraction = 0.01;
    static constexpr const char* name = "energy";

    std::vector<std::size_t> remove_counts(const std::vector<group_stats>& groups) const {
        std::vector<std::size_t> out;
        for (const auto& g : groups) {
            const auto v = detail::sorted(g.score);
            double total = 0, run = 0;
            for (float x : v) total += static_cast<double>(x) * x;
            std::size_t r = 0;
            for (; r < v.size(); ++r) {
                const double e = static_cast<double>(v[r]) * v[r];
                if (run + e > fraction * total) break;
                run += e;
            }
            out.push_back(r);
        }
        return out;
    }
};

// Network Slimming's baseline: one threshold over the scores of all groups, removing the
// `fraction` of all channels with the lowest scores (ties at the threshold are kept). It may
// empty a whole layer; prune() reports that.
struct global_percentile {
    double fraction = 0.5;
    static constexpr const char* name = "global_percentile";

    float threshold(const std::vector<group_stats>& groups) const {
        std::vector<float> all;
        for (const auto& g : groups) all.insert(all.end(), g.score.begin(), g.score.end());
        if (all.empty()) return 0.f;
        std::sort(all.begin(), all.end());
        const auto k = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(all.size())));
        return k >= all.size() ? all.back() + 1.f : all[k];
    }
    std::vector<std::size_t> remove_counts(const std::vector<group_stats>& groups) const {
        const float t = threshold(groups);
        std::vector<std::size_t> out;
        for (const auto& g : groups)
            out.push_back(static_cast<std::size_t>(
                std::count_if(g.score.begin(), g.score.end(), [&](float x) { return x < t; })));
        return out;
    }
};

// The same fraction of every group's channels, the lowest-scored (with filter_l1 scores:
// Li et al.'s L1-norm filter pruning at one rate for all layers). At least one channel of a
// group with any is kept.
struct uniform_fraction {
    double fraction = 0.5;
    static constexpr const char* name = "uniform_fraction";

    std::vector<std::size_t> remove_counts(const std::vector<group_stats>& groups) const {
        std::vector<std::size_t> out;
        for (const auto& g : groups) {
            const auto k = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(g.channels)));
            out.push_back(g.channels == 0 ? 0 : std::min(k, g.channels - 1));
        }
        return out;
    }
};

}  // namespace sgp::prune::rules
