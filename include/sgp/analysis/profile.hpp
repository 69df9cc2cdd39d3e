#pragma once
// Measured CPU time per layer: the fp32 evaluation forward of a network (per node of its
// description) and the int8 path (per op of a qmodel). Each repeat runs the whole network
// once untimed per layer (the whole-network time) and once with a clock read at every
// layer boundary (the per-layer times), and the medians over the repeats are reported, so
// the per-layer times and the whole can be compared: their ratio is the cost of looking.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/graph.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::analysis {

struct timing {
    std::vector<double> ms;  // per node (fp32) or per step (int8), median over the repeats
    double total_ms = 0;     // the whole run without per-layer clocks, median
    double sum_ms = 0;       // the sum of `ms`
    std::size_t repeats = 0;
};

namespace detail {

using clock = std::chrono::steady_clock;

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    if (v.size() % 2) return *mid;
    return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

inline double ms_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Clock reads at every layer boundary of a forward. An interval ends at an event: up to a
// layer's input it is the chain's bookkeeping before that layer, up to its output the layer
// itself; a fused group (input of the convolution, output of its ReLU) goes to the
// convolution, which does the group's work.
class layer_clock final : public activation_observer {
public:
    explicit layer_clock(std::size_t nodes) : ms_(nodes, 0.0) {}
    void start() {
        std::fill(ms_.begin(), ms_.end(), 0.0);
        open_ = graph::no_node;
        last_ = graph::no_node;
        prev_ = clock::now();
    }
    void input(std::size_t node, const float*, std::size_t) override {
        charge(node);
        open_ = node;
    }
    void output(std::size_t node, const float*, std::size_t) override {
        charge(open_ != graph::no_node && open_ < node ? open_ : node);
        open_ = graph::no_node;
        last_ = node;
    }
    // The time after the last event (the network's output handed back) goes to the last layer.
    const std::vector<double>& finish() {
        charge(last_ == graph::no_node ? ms_.size() - 1 : last_);
        return ms_;
    }

private:
    void charge(std::size_t node) {
        const auto now = clock::now();
        if (node < ms_.size()) ms_[node] += ms_between(prev_, now);
        prev_ = now;
    }
    std::vector<double> ms_;
    std::size_t open_ = graph::no_node, last_ = graph::no_node;
    clock::time_point prev_;
};

inline timing medians(const std::vector<std::vector<double>>& per_repeat, std::vector<double> totals) {
    timing t;
    t.repeats = per_repeat.size();
    if (per_repeat.empty()) return t;
    t.ms.resize(per_repeat[0].size());
    std::vector<double> v(per_repeat.size());
    for (std::size_t i = 0; i < t.ms.size(); ++i) {
        for (std::size_t r = 0; r < per_repeat.size(); ++r) v[r] = per_repeat[r][i];
        t.ms[i] = median(v);
        t.sum_ms += t.ms[i];
    }
    t.total_ms = median(std::move(totals));
    return t;
}

}  // namespace detail

// fp32 evaluation of `batch` images (NCHW floats) through `net`, per node of its description.
template <class Net>
timing time_fp32(Net& net, const float* images, std::size_t batch, std::size_t repeats, thread_pool* pool = nullptr) {
    if (batch == 0 || repeats == 0) fail("analysis::time_fp32", "batch and repeats must be at least 1");
    net.reserve(batch);
    net.set_input_nchw(images, batch);
    run_context cx;
    cx.pool = pool;
    for (int w = 0; w < 3; ++w) net.forward(batch, cx);  // warm caches and the thread pool
    detail::layer_clock lc(Net::node_count);
    std::vector<std::vector<double>> per_repeat;
    std::vector<double> totals;
    for (std::size_t r = 0; r < repeats; ++r) {
        const auto t0 = detail::clock::now();
        net.forward(batch, cx);
        totals.push_back(detail::ms_between(t0, detail::clock::now()));
        run_context timed = cx;
        timed.observer = &lc;
        lc.start();
        net.forward(batch, timed);
        per_repeat.push_back(lc.finish());
    }
    return detail::medians(per_repeat, std::move(totals));
}

// The int8 path (target/int8_target.hpp) on `count` images ([C][H][W] floats, `stride`
// apart), per image: steps 0 (quantizing the input), 1..ops (op i - 1) and ops + 1 (reading
// the output).
template <class Target>
timing time_int8(Target& target, const float* images, std::size_t count, std::size_t stride, std::size_t repeats) {
    if (count == 0 || repeats == 0) fail("analysis::time_int8", "images and repeats must be at least 1");
    std::vector<float> out(target.outputs());
    for (std::size_t i = 0; i < count; ++i) target.run(images + i * stride, out.data());  // warm
    const std::size_t steps = target.op_count() + 2;
    std::vector<std::vector<double>> per_repeat;
    std::vector<double> totals;
    std::vector<double> ms(steps);
    for (std::size_t r = 0; r < repeats; ++r) {
        auto t0 = detail::clock::now();
        for (std::size_t i = 0; i < count; ++i) target.run(images + i * stride, out.data());
        totals.push_back(detail::ms_between(t0, detail::clock::now()) / static_cast<double>(count));
        std::fill(ms.begin(), ms.end(), 0.0);
        for (std::size_t i = 0; i < count; ++i) {
            auto prev = detail::clock::now();
            target.run(images + i * stride, out.data(), [&](std::size_t step) {
                const auto now = detail::clock::now();
                ms[step] += detail::ms_between(prev, now);
                prev = now;
            });
        }
        for (double& m : ms) m /= static_cast<double>(count);
        per_repeat.push_back(ms);
    }
    return detail::medians(per_repeat, std::move(totals));
}

}  // namespace sgp::analysis
