#pragma once
// Channel groups: the channels that pruning removes together, read off the network's
// description (core/graph.hpp). A group is one class of channels that is not fixed and has a
// batch norm among its members to score it: the producers that create it (a conv2d or linear,
// several when residual adds join their outputs), the layers that follow it with their own
// per-channel parameters (batch norms, depthwise convolutions), and the consumers that read
// it (the next conv2d / linear, as a segment of their input after a concat, as H*W features
// per channel after a flatten). Removing channel c removes it from every member at once.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "sgp/core/graph.hpp"

namespace sgp::prune {

// How groups joined by a residual add are treated.
enum class residual_policy {
    coupled,     // the residual stream is one group, pruned together or not at all
    keep_stream  // the stream keeps its full width: only channels inside blocks are pruned
                 // (Network Slimming's choice for ResNets)
};

struct channel_group {
    std::size_t cls = 0;                                       // the class in the description
    std::size_t producer = 0;                                  // the first producer's node id: the group's key in plans
    std::string name;                                          // that producer's path ("features.3", "layer1.0.conv1")
    std::size_t capacity = 0;                                  // declared channels
    std::vector<std::size_t> producers, followers, consumers;  // node ids
    std::vector<std::size_t> scales;                           // batch norms among the followers
    std::vector<std::size_t> sites;                            // rectifier outputs in the group
    bool residual = false;                                     // joined by a residual add
};

namespace detail {

inline bool holds(const graph::network_graph& g, const graph::space& s, std::size_t cls) {
    return std::any_of(s.begin(), s.end(), [&](const graph::segment& x) { return g.root(x.cls) == cls; });
}

inline std::vector<channel_group> find_groups(const graph::network_graph& g, residual_policy policy) {
    std::vector<channel_group> out;
    for (std::size_t c = 0; c < g.classes.size(); ++c) {
        if (g.root(c) != c || g.classes[c].fixed) continue;
        channel_group grp;
        grp.cls = c;
        grp.capacity = g.classes[c].width;
        for (const auto& n : g.nodes) {
            const bool in = holds(g, n.in, c), out_ = holds(g, n.out, c);
            if (n.type == graph::node_type::add && out_) grp.residual = true;
            if (n.type != graph::node_type::leaf) {
                if (out_ && n.rectifies) grp.sites.push_back(n.id);
                continue;
            }
            if (n.role == channel_role::produces) {
                if (out_) grp.producers.push_back(n.id);
                if (in) grp.consumers.push_back(n.id);
            } else if (n.role == channel_role::follows && in) {
                grp.followers.push_back(n.id);
                if (n.scale) grp.scales.push_back(n.id);
            }
            if (out_ && n.rectifies) grp.sites.push_back(n.id);
        }
        if (grp.producers.empty() || grp.scales.empty() || grp.consumers.empty()) continue;
        if (grp.residual && policy == residual_policy::keep_stream) continue;
        grp.producer = grp.producers.front();
        grp.name = g.nodes[grp.producer].path;
        out.push_back(std::move(grp));
    }
    std::sort(out.begin(), out.end(),
              [](const channel_group& a, const channel_group& b) { return a.producer < b.producer; });
    return out;
}

}  // namespace detail

// The prunable channel groups of Net, ordered by their first producer.
template <class Net>
const std::vector<channel_group>& channel_groups(residual_policy policy = residual_policy::coupled) {
    static const std::vector<channel_group> coupled = detail::find_groups(Net::graph(), residual_policy::coupled);
    static const std::vector<channel_group> stream = detail::find_groups(Net::graph(), residual_policy::keep_stream);
    return policy == residual_policy::coupled ? coupled : stream;
}

// A readable fingerprint of a network, stored in pruning plans so that a plan is never
// applied to another network: "1x32x32 conv2d:64 batch_norm:64 relu:64 ...".
template <class Net>
std::string network_signature() {
    return graph::signature(Net::graph(), Net::input_shape);
}

}  // namespace sgp::prune
