#pragma once
// What pruning decides on, per channel group: a score per active channel and the sparsity
// of the activations the group feeds, measured over a calibration set.
//   scores::gamma_magnitude  |gamma_c|                     (Network Slimming; the default)
//   scores::taylor           mean over batches of |gamma_c * dL/dgamma_c|  (first-order Taylor)
#include <cmath>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "sgp/data/loader.hpp"
#include "sgp/prune/groups.hpp"
#include "sgp/prune/plan.hpp"
#include "sgp/train/loss.hpp"

namespace sgp::prune {

struct group_stats {
    channel_group group;
    std::size_t channels = 0;       // active channels
    std::vector<float> score;       // one per active channel; low = pruned first
    double next_zero_fraction = 0;  // exact zeros in the consumer's input over the calibration set
    double relu_zero_fraction = 0;  // exact zeros at the group's ReLU output (before any pool); 0 without ReLU
};

namespace scores {
// |gamma| of the channel's batch norm (Network Slimming's and SGP's score).
struct gamma_magnitude {
    static constexpr const char* name = "gamma_magnitude";
    static constexpr bool needs_gradients = false;
    static constexpr bool from_filters = false;
};
// |gamma * dL/dgamma|, averaged over the calibration batches (a first-order Taylor estimate).
struct taylor {
    static constexpr const char* name = "taylor";
    static constexpr bool needs_gradients = true;
    static constexpr bool from_filters = false;
};
// The L1 norm of the channel's filter weights, summed over the group's producers (Li et al.,
// "Pruning Filters for Efficient ConvNets", ICLR 2017): needs no batch norm.
struct filter_l1 {
    static constexpr const char* name = "filter_l1";
    static constexpr bool needs_gradients = false;
    static constexpr bool from_filters = true;
};
}  // namespace scores

namespace detail {

// Where class `cls`'s channels sit in space s (a batch norm after a concat holds several
// classes side by side): their positions among s's active channels, in the class's order.
inline std::vector<std::size_t> class_positions(const graph::network_graph& g, const graph::space& s, std::size_t cls,
                                                const std::vector<std::size_t>& w) {
    std::vector<std::size_t> out;
    std::size_t at = 0;
    for (const auto& seg : s) {
        if (g.root(seg.cls) == cls)
            for (std::size_t k = 0; k < w[seg.cls]; ++k) out.push_back(at + k);
        at += w[seg.cls];
    }
    return out;
}

// Calls f(layer) for the leaf at node id.
template <class Net, class F>
void with_node(Net& net, std::size_t id, F&& f) {
    net.for_each_node([&](std::size_t j, auto& l) {
        if (j == id) f(l);
    });
}

// Counts exact zeros, per group, in the channels of the group that its consumers read and
// that its rectifiers write, as forward forms them.
class zero_counter final : public activation_observer {
public:
    struct tally {
        double zeros = 0, values = 0;
        double fraction() const { return values > 0 ? zeros / values : 0; }
    };
    std::vector<tally> consumer, site;

    zero_counter(const graph::network_graph& g, const std::vector<channel_group>& groups, std::vector<std::size_t> w)
        : consumer(groups.size()), site(groups.size()), g_(g), groups_(groups), w_(std::move(w)) {
        watch_in_.resize(g.nodes.size());
        watch_out_.resize(g.nodes.size());
        for (std::size_t i = 0; i < groups.size(); ++i) {
            for (auto id : groups[i].consumers) watch_in_[id].push_back(i);
            for (auto id : groups[i].sites) watch_out_[id].push_back(i);
        }
    }
    void input(std::size_t node, const float* x, std::size_t n) override {
        for (auto i : watch_in_[node]) count(g_.nodes[node].in, g_.nodes[node].in_shape, i, x, n, consumer[i]);
    }
    void output(std::size_t node, const float* y, std::size_t n) override {
        for (auto i : watch_out_[node]) count(g_.nodes[node].out, g_.nodes[node].out_shape, i, y, n, site[i]);
    }

private:
    // Zeros in the rows of the group's segments: [features][n][plane] with `plane` the map's
    // pixels (1 for flat features).
    void count(const graph::space& s, shape sh, std::size_t i, const float* a, std::size_t n, tally& t) const {
        const std::size_t plane = sh.flat ? 1 : sh.plane();
        std::size_t at = 0;
        for (const auto& seg : s) {
            const std::size_t rows = w_[seg.cls] * seg.factor;
            if (g_.root(seg.cls) == groups_[i].cls) {
                const float* p = a + at * n * plane;
                const std::size_t len = rows * n * plane;
                std::size_t z = 0;
                for (std::size_t k = 0; k < len; ++k) z += p[k] == 0.f;
                t.zeros += static_cast<double>(z);
                t.values += static_cast<double>(len);
            }
            at += rows;
        }
    }
    const graph::network_graph& g_;
    const std::vector<channel_group>& groups_;
    std::vector<std::size_t> w_;
    std::vector<std::vector<std::size_t>> watch_in_, watch_out_;
};

}  // namespace detail

// Scores and activation sparsity of every channel group. Runs the calibration set through
// the network in evaluation mode (and, for gradient-based scores, once more in training mode
// with the running statistics restored afterwards). At most max_batches batches (0: all).
template <class Net, class Score>
std::vector<group_stats> collect_stats(Net& net, const Score&, batch_loader& calib, thread_pool* pool = nullptr,
                                       std::size_t max_batches = 0, residual_policy policy = residual_policy::coupled) {
    const auto& groups = channel_groups<Net>(policy);
    const auto w = net.class_widths();
    std::vector<group_stats> out;
    // A group's score: the mean over its batch norms of |gamma| (one batch norm: |gamma| itself).
    // Each scale node's channel positions of its group, found once.
    std::vector<std::vector<std::pair<std::size_t, std::vector<std::size_t>>>> scale_at(groups.size());
    for (std::size_t i = 0; i < groups.size(); ++i)
        for (auto id : groups[i].scales)
            scale_at[i].emplace_back(
                id, detail::class_positions(Net::graph(), Net::graph().nodes[id].in, groups[i].cls, w));
    // f(group, positions, layer) for every group's batch norms, in one walk over the network.
    auto for_each_scale = [&](auto&& f) {
        net.for_each_node([&](std::size_t id, auto& bn) {
            if constexpr (has_channel_scale_v<std::remove_cvref_t<decltype(bn)>>)
                for (std::size_t i = 0; i < groups.size(); ++i)
                    for (const auto& [sid, pos] : scale_at[i])
                        if (sid == id) f(i, pos, bn);
        });
    };
    for (const auto& g : groups) {
        group_stats s;
        s.group = g;
        s.channels = w[g.cls];
        s.score.assign(s.channels, 0.f);
        out.push_back(std::move(s));
    }
    if constexpr (Score::from_filters) {
        // A producer's output channel c is the group's channel c: its weights are row c of the
        // active [out][in...] weight tensor.
        for (std::size_t i = 0; i < groups.size(); ++i)
            for (auto id : groups[i].producers)
                detail::with_node(net, id, [&](auto& l) {
                    l.for_each_tensor([&](const tensor_ref& t) {
                        if (t.name != std::string_view("weight") || t.dims.empty()) return;
                        if (t.dims[0] != out[i].channels)
                            fail("filter_l1", "producer " + Net::graph().nodes[id].path + " has " +
                                                  std::to_string(t.dims[0]) + " filters, its group " +
                                                  std::to_string(out[i].channels) + " channels");
                        const std::size_t row = t.size() / t.dims[0];
                        for (std::size_t c = 0; c < out[i].channels; ++c) {
                            double l1 = 0;
                            for (std::size_t k = 0; k < row; ++k) l1 += std::abs(t.value[c * row + k]);
                            out[i].score[c] += static_cast<float>(l1);
                        }
                    });
                });
    } else {
        for_each_scale([&](std::size_t i, const std::vector<std::size_t>& pos, auto& bn) {
            for (std::size_t c = 0; c < out[i].channels; ++c) out[i].score[c] += std::abs(bn.gamma()[pos[c]]);
        });
        for (std::size_t i = 0; i < groups.size(); ++i)
            if (groups[i].scales.size() > 1)
                for (auto& v : out[i].score) v /= static_cast<float>(groups[i].scales.size());
    }
    calib.check_network(Net::input_shape, Net::output_shape.size(), "the network being scored");
    net.reserve(calib.options().batch);
    std::vector<int> labels(calib.options().batch);
    detail::zero_counter zeros(Net::graph(), groups, w);
    run_context cx;
    cx.pool = pool;
    cx.observer = &zeros;
    calib.start_epoch(0);
    std::size_t b = 0;
    for (std::size_t n;
         (max_batches == 0 || b < max_batches) && (n = calib.next(net.input_buffer(), labels.data())) > 0; ++b) {
        cx.training = false;
        net.forward(n, cx);
    }
    cx.observer = nullptr;
    for (std::size_t i = 0; i < groups.size(); ++i) {
        out[i].next_zero_fraction = zeros.consumer[i].fraction();
        out[i].relu_zero_fraction = zeros.site[i].fraction();
    }

    if constexpr (Score::needs_gradients) {
        // Training-mode passes update BN running statistics: keep and restore them.
        std::vector<std::vector<float>> saved;
        net.for_each_tensor([&](const std::string&, const tensor_ref& t) {
            if (t.value && t.role == tensor_role::buffer) saved.emplace_back(t.value, t.value + t.size());
        });
        std::vector<std::vector<double>> acc(groups.size());
        for (std::size_t i = 0; i < groups.size(); ++i) acc[i].assign(out[i].channels, 0.0);
        aligned_buffer<float> dlogits(Net::output_shape.c * calib.options().batch);
        calib.start_epoch(0);
        std::size_t batches = 0;
        cx.training = true;
        for (std::size_t n;
             (max_batches == 0 || batches < max_batches) && (n = calib.next(net.input_buffer(), labels.data())) > 0;
             ++batches) {
            const float* logits = net.forward(n, cx);
            softmax_cross_entropy(logits, labels.data(), net.widths().back(), n, dlogits.data());
            net.backward(dlogits.data(), cx);
            for_each_scale([&](std::size_t i, const std::vector<std::size_t>& pos, auto& bn) {
                for (std::size_t c = 0; c < out[i].channels; ++c)
                    acc[i][c] += std::abs(static_cast<double>(bn.gamma()[pos[c]]) * bn.gamma_grad()[pos[c]]);
            });
        }
        for (std::size_t i = 0; i < groups.size(); ++i)
            for (std::size_t c = 0; c < out[i].channels; ++c)
                out[i].score[c] =
                    static_cast<float>(acc[i][c] / static_cast<double>(std::max<std::size_t>(1, batches)));
        std::size_t k = 0;
        net.for_each_tensor([&](const std::string&, const tensor_ref& t) {
            if (t.value && t.role == tensor_role::buffer) std::copy(saved[k].begin(), saved[k].end(), t.value), ++k;
        });
    }
    return out;
}

}  // namespace sgp::prune
