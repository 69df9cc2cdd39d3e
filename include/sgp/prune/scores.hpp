#pragma once
// What pruning decides on, per channel group: a score per active channel and the sparsity
// of the activations the group feeds, measured over a calibration set.
//   scores::gamma_magnitude  |gamma_c|                     (Network Slimming; the default)
//   scores::taylor           mean over batches of |gamma_c * dL/dgamma_c|  (first-order Taylor)
#include <cmath>
#include <string>
#include <vector>

#include "sgp/data/loader.hpp"
#include "sgp/prune/groups.hpp"
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
struct gamma_magnitude {
    static constexpr const char* name = "gamma_magnitude";
    static constexpr bool needs_gradients = false;
};
struct taylor {
    static constexpr const char* name = "taylor";
    static constexpr bool needs_gradients = true;
};
}  // namespace scores

namespace detail {
template <class Net, class F>
void with_norm(Net& net, std::size_t index, F&& f) {
    net.for_each_layer([&](std::size_t j, auto& l) {
        if constexpr (requires { l.gamma_grad(); })
            if (j == index) f(l);
    });
}
}  // namespace detail

// Scores and activation sparsity of every channel group. Runs the calibration set through
// the network in evaluation mode (and, for gradient-based scores, once more in training mode
// with the running statistics restored afterwards). At most max_batches batches (0: all).
template <class Net, class Score>
std::vector<group_stats> collect_stats(Net& net, const Score&, batch_loader& calib, thread_pool* pool = nullptr,
                                       std::size_t max_batches = 0) {
    constexpr auto& groups = channel_groups<Net>;
    std::vector<group_stats> out;
    const auto w = net.widths();
    for (const auto& g : groups) {
        group_stats s;
        s.group = g;
        s.channels = w[g.producer + 1];
        s.score.assign(s.channels, 0.f);
        detail::with_norm(net, g.norm, [&](auto& bn) {
            for (std::size_t c = 0; c < s.channels; ++c) s.score[c] = std::abs(bn.gamma()[c]);
        });
        out.push_back(std::move(s));
    }
    calib.check_network(Net::input_shape, Net::output_shape.size(), "the network being scored");
    net.reserve(calib.options().batch);
    std::vector<int> labels(calib.options().batch);
    std::vector<double> zeros(groups.size(), 0), values(groups.size(), 0);
    std::vector<double> relu_zeros(groups.size(), 0), relu_values(groups.size(), 0);
    auto count_zeros = [&](std::size_t act, std::size_t n, double& z, double& v) {
        const std::size_t len = w[act] * n * Net::shapes[act].plane();
        const float* a = net.activation(act);
        std::size_t c = 0;
        for (std::size_t k = 0; k < len; ++k) c += a[k] == 0.f;
        z += static_cast<double>(c);
        v += static_cast<double>(len);
    };
    run_context cx;
    cx.pool = pool;
    calib.start_epoch(0);
    std::size_t b = 0;
    for (std::size_t n;
         (max_batches == 0 || b < max_batches) && (n = calib.next(net.input_buffer(), labels.data())) > 0; ++b) {
        cx.training = false;
        net.forward(n, cx);
        for (std::size_t i = 0; i < groups.size(); ++i) {
            count_zeros(groups[i].consumer, n, zeros[i], values[i]);
            if (groups[i].relu_output) count_zeros(groups[i].relu_output, n, relu_zeros[i], relu_values[i]);
        }
    }
    for (std::size_t i = 0; i < groups.size(); ++i) {
        out[i].next_zero_fraction = values[i] > 0 ? zeros[i] / values[i] : 0;
        out[i].relu_zero_fraction = relu_values[i] > 0 ? relu_zeros[i] / relu_values[i] : 0;
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
            softmax_cross_entropy(logits, labels.data(), w.back(), n, dlogits.data());
            net.backward(dlogits.data(), cx);
            for (std::size_t i = 0; i < groups.size(); ++i)
                detail::with_norm(net, groups[i].norm, [&](auto& bn) {
                    for (std::size_t c = 0; c < out[i].channels; ++c)
                        acc[i][c] += std::abs(static_cast<double>(bn.gamma()[c]) * bn.gamma_grad()[c]);
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
