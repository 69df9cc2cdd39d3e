#pragma once
// A pruning plan: for each channel group, which of the declared channels are kept (indices
// into the static capacity, ascending). Plans are derived from a pruned network, written as
// JSON, validated against the network they are applied to, and applied by surgery: the kept
// channels are compacted to the front of every buffer and the active widths narrowed, so
// the network then trains and infers at its pruned cost.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/io/json.hpp"
#include "sgp/io/json_reader.hpp"
#include "sgp/io/read_file.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/prune/groups.hpp"

namespace sgp::prune {

struct layer_plan {
    std::size_t layer = 0;          // the group's first producer (conv2d / linear): its node id
    std::size_t capacity = 0;       // its declared channels
    std::vector<std::size_t> keep;  // kept declared channels, ascending
    std::string name;               // the producer's path ("layer1.0.conv1"), for readers
};

struct plan {
    std::string network;  // network_signature<Net>() of the network it belongs to
    std::vector<layer_plan> layers;
};

namespace detail {

// Positions (ascending, among the active channels of space s) that remain when the group of
// class `cls` keeps `keep` of its active channels; `w` gives every class's active width.
inline std::vector<std::size_t> kept_positions(const graph::network_graph& g, const graph::space& s, std::size_t cls,
                                               const std::vector<std::size_t>& w,
                                               const std::vector<std::size_t>& keep) {
    std::vector<std::size_t> out;
    std::size_t at = 0;
    for (const auto& seg : s) {
        const std::size_t width = w[seg.cls];
        if (g.root(seg.cls) == cls)
            for (std::size_t k : keep) out.push_back(at + k);
        else
            for (std::size_t k = 0; k < width; ++k) out.push_back(at + k);
        at += width;
    }
    return out;
}

// The flatten factor of a consumer's input (H*W features per channel after a flatten).
inline std::size_t input_factor(const graph::node& n) {
    return n.in.empty() ? 1 : n.in.front().factor;
}

// Removes all but channels `keep` (ascending positions among the group's active channels)
// from every member of the group: surgery.
template <class Net>
void keep_active(Net& net, const channel_group& grp, const std::vector<std::size_t>& keep) {
    const auto& g = Net::graph();
    const auto w = net.class_widths();
    auto member = [](const std::vector<std::size_t>& v, std::size_t id) {
        return std::binary_search(v.begin(), v.end(), id);
    };
    net.for_each_node([&](std::size_t id, auto& l) {
        using L = std::remove_cvref_t<decltype(l)>;
        const auto& n = g.nodes[id];
        if constexpr (channel_producer<L>) {
            if (member(grp.consumers, id)) l.keep_inputs(kept_positions(g, n.in, grp.cls, w, keep), input_factor(n));
            if (member(grp.producers, id)) l.keep_outputs(keep);
        } else if constexpr (channel_follower<L>) {
            if (member(grp.followers, id)) l.keep_channels(kept_positions(g, n.in, grp.cls, w, keep));
        }
    });
    net.update_widths();
}

}  // namespace detail

// The declared channels each group currently keeps.
template <class Net>
std::vector<std::size_t> kept_channels(Net& net, const channel_group& g) {
    std::vector<std::size_t> out;
    net.for_each_node([&](std::size_t id, auto& l) {
        if constexpr (requires { l.channel_origin(); })
            if (id == g.producer) out.assign(l.channel_origin().begin(), l.channel_origin().end());
    });
    return out;
}

// The network's current plan (every group, pruned or not).
template <class Net>
plan current_plan(Net& net) {
    plan p{network_signature<Net>(), {}};
    for (const auto& g : channel_groups<Net>())
        p.layers.push_back({g.producer, g.capacity, kept_channels(net, g), g.name});
    return p;
}

// Checks a plan against Net; throws sgp::error naming `where` and the problem.
template <class Net>
void validate(const plan& p, const std::string& where) {
    if (p.network != network_signature<Net>())
        fail(where, "the plan is for another network (" + p.network.substr(0, 60) + "...), not this one (" +
                        network_signature<Net>().substr(0, 60) + "...)");
    for (const auto& lp : p.layers) {
        const std::string at = where + ": layer " + std::to_string(lp.layer);
        const auto& groups = channel_groups<Net>();
        const auto g =
            std::find_if(groups.begin(), groups.end(), [&](const channel_group& x) { return x.producer == lp.layer; });
        if (g == groups.end())
            fail(at,
                 "is not a prunable layer (the first producer of a channel group, a conv2d or linear whose "
                 "channels a batch_norm scales)");
        if (lp.capacity != g->capacity)
            fail(at,
                 "capacity " + std::to_string(lp.capacity) + ", the network declares " + std::to_string(g->capacity));
        if (lp.keep.empty()) fail(at, "keeps no channel (a layer cannot be emptied)");
        for (std::size_t i = 0; i < lp.keep.size(); ++i) {
            if (lp.keep[i] >= g->capacity)
                fail(at, "channel index " + std::to_string(lp.keep[i]) + " is out of range (capacity " +
                             std::to_string(g->capacity) + ")");
            if (i && lp.keep[i] <= lp.keep[i - 1]) fail(at, "channel indices must be ascending and distinct");
        }
    }
}

// Applies a plan: every listed group ends up with exactly the listed declared channels.
// The network may already be pruned; a plan can only remove channels, never restore them.
template <class Net>
void apply(Net& net, const plan& p, const std::string& where = "pruning plan") {
    validate<Net>(p, where);
    for (const auto& lp : p.layers) {
        const auto& groups = channel_groups<Net>();
        const auto& g =
            *std::find_if(groups.begin(), groups.end(), [&](const channel_group& x) { return x.producer == lp.layer; });
        const auto now = kept_channels(net, g);
        std::vector<std::size_t> keep;
        for (std::size_t c : lp.keep) {
            const auto it = std::lower_bound(now.begin(), now.end(), c);
            if (it == now.end() || *it != c)
                fail(where + ": layer " + std::to_string(lp.layer),
                     "channel " + std::to_string(c) + " was already removed from this network");
            keep.push_back(static_cast<std::size_t>(it - now.begin()));
        }
        if (keep.size() != now.size()) detail::keep_active(net, g, keep);
    }
}

inline std::string to_json(const plan& p) {
    json_writer j;
    j.begin_object().field("format", "sgp pruning plan 1").field("network", p.network);
    j.key("layers").begin_array();
    for (const auto& l : p.layers) {
        j.begin_object().field("layer", l.layer);
        if (!l.name.empty()) j.field("name", l.name);
        j.field("capacity", l.capacity).field("kept", l.keep.size());
        j.key("keep").begin_array();
        for (auto c : l.keep) j.value(c);
        j.end_array().end_object();
    }
    j.end_array().end_object();
    return j.str();
}

inline plan plan_from_json(const std::string& text, const std::string& where) {
    const auto v = parse_json(text, where);
    if (v.at("format", where).text(where) != "sgp pruning plan 1") fail(where, "not an sgp pruning plan (format)");
    plan p;
    p.network = v.at("network", where).text(where + ": network");
    for (const auto& l : v.at("layers", where).array(where + ": layers")) {
        layer_plan lp;
        lp.layer = l.at("layer", where).index(where + ": layer");
        const std::string at = where + ": layer " + std::to_string(lp.layer);
        lp.capacity = l.at("capacity", at).index(at + ": capacity");
        for (const auto& c : l.at("keep", at).array(at + ": keep")) lp.keep.push_back(c.index(at + ": keep"));
        p.layers.push_back(std::move(lp));
    }
    return p;
}

inline void save_plan(const plan& p, const std::string& path) {
    write_file_atomic(path, to_json(p) + "\n");
}

inline plan load_plan(const std::string& path) {
    return plan_from_json(read_file_bytes(path, 1 << 26), path);  // plans are kilobytes
}

}  // namespace sgp::prune
