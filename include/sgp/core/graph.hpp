#pragma once
// The network's description: one node per leaf layer and per join (a residual add, a
// concat), in the order forward runs them, each with its path (PyTorch's module name), kind,
// shapes, role, cost function and the channels it reads and writes. Built once from the
// network's type (every layer describes itself), it is what pruning, costs at hypothetical
// widths, plans and reports walk; the layers stay the only place where a layer's facts live.
//
// Channels are tracked as classes: every producer (and the input, and a barrier) creates one
// class of channels; layers that follow or pass channels hand on the classes they read; a
// residual add unites the classes of its two operands (they are the same channels from then
// on), a concat lists its operands' classes side by side as segments. After the whole
// network is described, each class is one channel group for pruning, unless it is fixed: the
// input's, the output's (the classes), a barrier's, or one an add could not unite.
#include <cstddef>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/cost.hpp"
#include "sgp/core/error.hpp"
#include "sgp/core/shape.hpp"
#include "sgp/layers/contract.hpp"

namespace sgp::graph {

// `count` channels of class `cls` (count = its width), each `factor` consecutive features
// (H*W after a flatten, else 1).
struct segment {
    std::size_t cls = 0;
    std::size_t factor = 1;
};
using space = std::vector<segment>;

enum class node_type { leaf, add, concat };

inline constexpr std::size_t no_node = static_cast<std::size_t>(-1);

struct node {
    std::size_t id = 0;
    std::string path;  // "layer1.0.conv1"; the index in its chain when not named
    std::string_view kind;
    node_type type = node_type::leaf;
    channel_role role = channel_role::passes;
    shape in_shape, out_shape;
    space in, out;
    cost (*cost_at)(std::size_t in, std::size_t out) = nullptr;  // null for joins
    cost declared;                                               // at the declared widths
    bool scale = false;                                          // its channel scale scores channels (batch_norm)
    bool rectifies = false;                                      // a rectifier's output (relu, relu6, add + relu)
    std::vector<std::size_t> operands;  // joins: the nodes whose outputs it joins (the input: none)
    std::size_t source = no_node;       // leaves: the node whose output it reads (no_node: the input)
    // Window of a convolution or pool (1, 1, 0 for other layers): for reports and cost models.
    std::size_t kernel = 1, stride = 1, padding = 0;
    bool windowed = false;  // the layer states a window (kernel, stride)
};

struct channel_class {
    std::size_t width = 0;    // declared channels
    std::size_t parent = 0;   // union-find
    std::size_t creator = 0;  // the node that creates it (no_node: the network input)
    bool fixed = false;
};

class network_graph {
public:
    std::vector<node> nodes;
    std::vector<channel_class> classes;
    // The node whose output the next described node reads (no_node: the network input).
    // Composites set it back to their input before describing a second branch.
    std::size_t current = no_node;

    std::size_t root(std::size_t c) const {
        while (classes[c].parent != c) c = classes[c].parent;
        return c;
    }
    std::size_t new_class(std::size_t width, std::size_t creator, bool fixed = false) {
        classes.push_back({width, classes.size(), creator, fixed});
        return classes.size() - 1;
    }
    void fix(const space& s) {
        for (const auto& g : s) classes[root(g.cls)].fixed = true;
    }
    // Channel widths (in features) of a space, given the width of every class.
    static std::size_t width(const space& s, const std::vector<std::size_t>& class_width) {
        std::size_t w = 0;
        for (const auto& g : s) w += class_width[g.cls] * g.factor;
        return w;
    }
    // The declared width of every class.
    std::vector<std::size_t> declared_widths() const {
        std::vector<std::size_t> w(classes.size());
        for (std::size_t c = 0; c < classes.size(); ++c) w[c] = classes[root(c)].width;
        return w;
    }
    // Parameters and multiply-adds with every class at `class_width` (indexed by class).
    cost cost_at(const std::vector<std::size_t>& class_width) const {
        cost c;
        for (const auto& n : nodes)
            if (n.cost_at) c += n.cost_at(width(n.in, class_width), width(n.out, class_width));
        return c;
    }

    // Called by the layers as they describe themselves (chain.hpp and the composites).
    template <class L>
    space leaf(std::string path, const space& in) {
        static_assert(L::cost_at(L::in_shape.c, L::out_shape.c) == cost{L::parameter_count, L::macs},
                      "a layer's cost_at at its declared widths must equal its parameter_count and macs");
        node n;
        n.id = nodes.size();
        n.path = std::move(path);
        n.kind = L::kind;
        n.role = L::role;
        n.in_shape = L::in_shape;
        n.out_shape = L::out_shape;
        n.in = in;
        n.cost_at = &L::cost_at;
        n.declared = cost{L::parameter_count, L::macs};
        n.scale = has_channel_scale_v<L>;
        n.rectifies = rectifies_v<L>;
        n.source = current;
        if constexpr (requires { L::kernel, L::stride; }) {
            n.kernel = L::kernel, n.stride = L::stride, n.windowed = true;
            if constexpr (requires { L::padding; }) n.padding = L::padding;
        }
        switch (L::role) {
            case channel_role::produces:
                n.out = {{new_class(L::out_shape.c, n.id), 1}};
                break;
            case channel_role::follows:
            case channel_role::passes:
                n.out = in;
                break;
            case channel_role::flattens:
                n.out = in;
                for (auto& g : n.out) g.factor *= L::in_shape.plane();
                break;
            case channel_role::barrier:
                fix(in);
                n.out = {{new_class(L::out_shape.c, n.id, true), 1}};
                break;
        }
        // Per-channel parameters of whole channels only: a batch norm over flattened
        // features cannot follow a channel's removal.
        if (L::role == channel_role::follows)
            for (const auto& g : in)
                if (g.factor != 1) fix(in);
        current = n.id;
        nodes.push_back(std::move(n));
        return nodes.back().out;
    }

    // A residual add of the outputs `a` (the body) and `b` (the shortcut), with a ReLU after
    // when `relu`. Unites the operands' classes segment by segment; operands of another
    // layout (a concat against a single producer) fix both.
    space add(std::string path, const space& a, const space& b, std::size_t node_a, std::size_t node_b, shape s,
              bool relu) {
        bool same = a.size() == b.size();
        for (std::size_t i = 0; same && i < a.size(); ++i)
            same = a[i].factor == b[i].factor && classes[root(a[i].cls)].width == classes[root(b[i].cls)].width;
        if (same) {
            for (std::size_t i = 0; i < a.size(); ++i) unite(a[i].cls, b[i].cls);
        } else {
            fix(a);
            fix(b);
        }
        node n;
        n.id = nodes.size();
        n.path = std::move(path);
        n.kind = relu ? "add_relu" : "add";
        n.type = node_type::add;
        n.in_shape = n.out_shape = s;
        n.in = a;
        n.out = a;
        n.rectifies = relu;
        n.operands = {node_a, node_b};
        current = n.id;
        nodes.push_back(std::move(n));
        return nodes.back().out;
    }

    // Operands side by side along channels.
    space concat(std::string path, const std::vector<space>& parts, std::vector<std::size_t> operands, shape s) {
        node n;
        n.id = nodes.size();
        n.path = std::move(path);
        n.kind = "concat";
        n.type = node_type::concat;
        n.in_shape = n.out_shape = s;
        for (const auto& p : parts) n.out.insert(n.out.end(), p.begin(), p.end());
        n.in = n.out;
        n.operands = std::move(operands);
        current = n.id;
        nodes.push_back(std::move(n));
        return nodes.back().out;
    }

private:
    void unite(std::size_t a, std::size_t b) {
        a = root(a), b = root(b);
        if (a == b) return;
        if (b < a) std::swap(a, b);
        classes[b].parent = a;  // the earlier class names the group
        classes[a].fixed = classes[a].fixed || classes[b].fixed;
    }
};

// "1x32x32 conv2d:64 batch_norm:64 ...": a network's fingerprint, stored in pruning plans so
// that a plan is never applied to another network. Joins name their operands.
inline std::string signature(const network_graph& g, shape input) {
    std::string s = std::to_string(input.c) + "x" + std::to_string(input.h) + "x" + std::to_string(input.w);
    for (const auto& n : g.nodes) {
        s += " " + std::string(n.kind);
        if (!n.operands.empty()) {
            s += "(";
            for (std::size_t i = 0; i < n.operands.size(); ++i)
                s += (i ? "," : "") + (n.operands[i] == no_node ? std::string("in") : std::to_string(n.operands[i]));
            s += ")";
        }
        s += ":" + std::to_string(n.out_shape.c);
    }
    return s;
}

}  // namespace sgp::graph
