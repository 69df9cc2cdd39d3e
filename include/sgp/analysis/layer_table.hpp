#pragma once
// One row per node of a network's description (core/graph.hpp) at its current widths: shapes,
// active and declared channels, parameters, multiply-adds, weight and activation bytes, and
// which activations an evaluation forward keeps alive at once. Everything is computed from the
// description and the layers' own cost_at, so the rows sum to the network's totals by
// construction (tested against the compile-time parameter_count and macs).
#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/cost.hpp"
#include "sgp/core/graph.hpp"
#include "sgp/core/shape.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::analysis {

inline constexpr double not_measured = std::numeric_limits<double>::quiet_NaN();

struct layer_row {
    std::size_t id = 0;
    std::string path;
    std::string_view kind;
    graph::node_type type = graph::node_type::leaf;
    channel_role role = channel_role::passes;
    shape in, out;                                  // per image, channels at the active widths
    std::size_t declared_in = 0, declared_out = 0;  // channels (features after a flatten) as declared
    cost at;                                        // parameters and multiply-adds at the active widths
    std::size_t kernel = 1, stride = 1, padding = 0;
    bool windowed = false;           // a convolution's or a pool's window
    bool formed = true;              // an evaluation forward writes its output (not: fused away, or a view)
    bool fused = false;              // it runs inside the pass of the convolution before (batch norm, ReLU)
    std::vector<std::size_t> reads;  // the nodes whose outputs it reads (graph::no_node: the input)
    std::size_t live_elements = 0;   // activation values alive while it runs (one image)
    // Measured (analysis/profile.hpp, sqnr.hpp); NaN where not measured.
    double cpu_fp32_ms = not_measured, cpu_int8_ms = not_measured, sqnr_db = not_measured;
    std::size_t int8_op = graph::no_node;  // the int8 op this node opens (a conv, a pool)

    double gop() const { return 2.0 * static_cast<double>(at.macs) / 1e9; }  // one multiply-add = 2 ops
    std::size_t weight_bytes_fp32() const { return 4 * at.parameters; }
    std::size_t weight_bytes_int8() const { return at.parameters; }  // weights and biases are int8 on the DPU
    std::size_t in_elements() const { return in.size(); }
    std::size_t out_elements() const { return out.size(); }
};

struct layer_table {
    std::vector<layer_row> rows;
    shape input;
    cost total;
    std::size_t peak_live_elements = 0;  // the largest live_elements: the forward's working set
    std::size_t peak_at = 0;             // the row where it peaks
};

namespace detail {

// What an evaluation forward does per node: which nodes it runs on their own (an input
// event; a fused batch norm or ReLU gets none) and whose output it forms (an output event; a
// fused group reports its last node's).
class formed_recorder final : public activation_observer {
public:
    formed_recorder(std::vector<char>& entered, std::vector<char>& formed) : entered_(entered), formed_(formed) {}
    void input(std::size_t node, const float*, std::size_t) override {
        if (node < entered_.size()) entered_[node] = 1;
    }
    void output(std::size_t node, const float*, std::size_t) override {
        if (node < formed_.size()) formed_[node] = 1;
    }

private:
    std::vector<char>&entered_, &formed_;
};

}  // namespace detail

// Which activations are alive at each row of `t` (one image): a formed output lives from the
// node that writes it to the last node that reads it, the input from the start, the output to
// the end; an unformed one (fused away, or a flatten's view) takes no memory. An executor that frees each
// activation after its last reader needs the peak of this at once; sgp's own buffers are
// per layer (core/sequential.hpp) and larger.
inline void compute_liveness(layer_table& t) {
    const std::size_t n = t.rows.size();
    // An unformed node's readers really read what it reads (the fused group's input, a
    // flatten's map).
    auto resolve = [&](std::size_t s, auto& self, std::vector<std::size_t>& out) -> void {
        if (s != graph::no_node && !t.rows[s].formed) {
            for (std::size_t r : t.rows[s].reads) self(r, self, out);
        } else {
            out.push_back(s);
        }
    };
    std::vector<std::size_t> last(n);  // an output nobody reads still exists while it is written
    for (std::size_t i = 0; i < n; ++i) last[i] = i;
    std::size_t input_last = 0;
    for (const auto& r : t.rows) {
        std::vector<std::size_t> src;
        for (std::size_t s : r.reads) resolve(s, resolve, src);
        for (std::size_t s : src) {
            std::size_t& l = s == graph::no_node ? input_last : last[s];
            l = std::max(l, r.id);
        }
    }
    if (n > 0) last[n - 1] = n;  // the network's output is read after the forward
    t.peak_live_elements = 0;
    for (std::size_t j = 0; j < n; ++j) {
        std::size_t live = j <= input_last ? t.input.size() : 0;
        for (std::size_t i = 0; i <= j; ++i)
            if (t.rows[i].formed && last[i] >= j) live += t.rows[i].out_elements();
        t.rows[j].live_elements = live;
        if (live > t.peak_live_elements) t.peak_live_elements = live, t.peak_at = j;
    }
}

// The rows of `net` at its current widths. Runs one evaluation forward on one blank image to
// see which activations evaluation forms (conv -> batch norm -> ReLU fuse); the weights are
// not touched.
template <class Net>
requires requires {
    Net::graph();
}
layer_table table_of(Net& net) {
    const auto& g = Net::graph();
    const auto widths = net.class_widths();
    layer_table t;
    t.input = Net::input_shape;
    std::vector<char> entered(g.nodes.size(), 0), formed(g.nodes.size(), 0);
    {
        net.reserve(1);
        std::fill_n(net.input_buffer(), Net::input_shape.size(), 0.f);
        detail::formed_recorder rec(entered, formed);
        run_context cx;
        cx.observer = &rec;
        net.forward(1, cx);
    }
    for (const auto& n : g.nodes) {
        layer_row r;
        r.id = n.id;
        r.path = n.path;
        r.kind = n.kind;
        r.type = n.type;
        r.role = n.role;
        r.in = n.in_shape;
        r.out = n.out_shape;
        r.in.c = graph::network_graph::width(n.in, widths);
        r.out.c = graph::network_graph::width(n.out, widths);
        r.declared_in = n.in_shape.c;
        r.declared_out = n.out_shape.c;
        if (n.cost_at) r.at = n.cost_at(r.in.c, r.out.c);
        r.kernel = n.kernel, r.stride = n.stride, r.padding = n.padding, r.windowed = n.windowed;
        // A flatten is a view of its input: [C][H][W] is already the feature order.
        r.formed = formed[n.id] != 0 && n.role != channel_role::flattens;
        r.fused = n.type == graph::node_type::leaf && entered[n.id] == 0;
        if (n.type == graph::node_type::leaf)
            r.reads = {n.source};
        else
            r.reads = n.operands;
        t.total += r.at;
        t.rows.push_back(std::move(r));
    }
    compute_liveness(t);
    return t;
}

}  // namespace sgp::analysis
