#pragma once
// A network's weights as a PyTorch-style state_dict in an .npz archive: one float32 array
// per tensor, keyed "<prefix><layer index>.<name>" exactly as an nn.Sequential built from
// the same layer list names them (nested: "layer1.0.conv1.weight", as PyTorch's modules
// name their children), so weights move between sgp and PyTorch both ways
// (numpy.load -> torch.from_numpy -> load_state_dict, and back with numpy.savez).
// A pruned network also stores, per narrowed channel group, "prune.<producer>.keep": the
// declared channels it keeps. Loading re-applies them before the weights, so a pruned
// checkpoint describes itself (PyTorch users skip keys that do not start with a digit).
#include <set>
#include <string>

#include "sgp/core/error.hpp"
#include "sgp/io/npz.hpp"
#include "sgp/layers/layer.hpp"
#include "sgp/prune/plan.hpp"

namespace sgp {

template <class Net>
void add_state_dict(Net& net, npz_archive& a, const std::string& prefix = "") {
    net.for_each_tensor(
        [&](const std::string& key, const tensor_ref& t) {
            a[key] = t.counter ? npy_array::from_int64(*t.counter) : npy_array::from_floats(t.value, t.dims);
        },
        prefix);
    for (const auto& g : prune::channel_groups<Net>()) {
        const auto keep = prune::kept_channels(net, g);
        if (keep.size() != g.capacity) a[prefix + "prune." + g.name + ".keep"] = npy_array::from_indices(keep);
    }
}

template <class Net>
void save_state_dict(Net& net, const std::string& path, const std::string& prefix = "") {
    npz_archive a;
    add_state_dict(net, a, prefix);
    save_npz(path, a);
}

// Loads every tensor of net from the archive. Shapes must match the network's active
// shapes exactly; with `strict`, keys the network does not have are an error too.
template <class Net>
void read_state_dict(Net& net, const npz_archive& a, const std::string& path, const std::string& prefix = "",
                     bool strict = true) {
    prune::plan p{prune::network_signature<Net>(), {}};
    for (const auto& g : prune::channel_groups<Net>()) {
        const auto it = a.find(prefix + "prune." + g.name + ".keep");
        if (it != a.end())
            p.layers.push_back({g.producer, g.capacity, it->second.to_indices(path + ":" + it->first), g.name});
    }
    if (!p.layers.empty()) prune::apply(net, p, path);
    std::set<std::string> used;
    net.for_each_tensor(
        [&](const std::string& key, const tensor_ref& t) {
            const auto it = a.find(key);
            if (it == a.end()) {
                if (t.counter) return;  // num_batches_tracked is optional (older PyTorch files lack it)
                fail(path, "no array '" + key + "' (the network has it, shape " + shape_string(t.dims) + ")");
            }
            used.insert(key);
            const std::string where = path + ":" + key;
            if (t.counter) {
                *t.counter = it->second.to_int64(where);
                return;
            }
            if (it->second.shape != t.dims)
                fail(path, "'" + key + "' has shape " + shape_string(it->second.shape) + ", the network expects " +
                               shape_string(t.dims));
            const auto v = it->second.to_floats(where);
            std::copy(v.begin(), v.end(), t.value);
        },
        prefix);
    if (strict) {
        // Keys of the network's own modules (a layer index, or a top-level module name such as
        // "layer1") that name no tensor: a file for another network. Other sections
        // (optimizer., trainer., prune.) are not the network's.
        std::set<std::string> modules;
        for (const auto& k : used) modules.insert(k.substr(prefix.size(), k.find('.', prefix.size()) - prefix.size()));
        for (const auto& [key, arr] : a) {
            if (key.rfind(prefix, 0) != 0 || used.count(key)) continue;
            const auto dot = key.find('.', prefix.size());
            if (dot == std::string::npos) continue;
            const std::string module = key.substr(prefix.size(), dot - prefix.size());
            if (std::isdigit(static_cast<unsigned char>(key[prefix.size()])) || modules.count(module))
                fail(path, "array '" + key + "' matches no tensor of the network (a file for another network?)");
        }
    }
}

template <class Net>
void load_state_dict(Net& net, const std::string& path, const std::string& prefix = "", bool strict = true) {
    read_state_dict(net, load_npz(path), path, prefix, strict);
}

}  // namespace sgp
