#pragma once
// The layer contract: what every bound layer (decl::bind<In>) states about itself, checked by
// the compiler. Everything outside a layer (pruning, costs, the int8 model, the static header,
// the network's description) asks the layer through this contract; nothing compares kind
// strings. A leaf layer states
//   role        what it does to channels, for pruning (channel_role below)
//   cost_at     its parameters and multiply-adds at given active widths
//   declaration its C++ declaration at its active (pruned) widths
//   fold_int8   how it enters the DPU's int8 model (quant/fold.hpp)
// and runs forward / backward. A composite layer (chain, residual, concat) holds chains of
// layers and states the same through its children (composite.hpp). docs/architecture.md
// shows how to add a layer.
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/cost.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp {

namespace kernels {
struct conv_epilogue;
}

// What a leaf layer does to the channels it reads, which decides the channel groups that
// pruning removes together (prune/groups.hpp):
//   produces  new channels from all of its inputs (conv2d, linear): prunable as outputs, and
//             as inputs (it consumes the channels of the layers before it)
//   follows   one output per input channel with per-channel parameters (batch_norm, a
//             depthwise convolution): pruned together with the channels it follows
//   passes    one output per input channel, no parameters (relu, pools, dropout)
//   flattens  C x H x W into C*H*W features: each channel becomes H*W consecutive features
//   barrier   its input width cannot change (a fixed reshuffle such as the zero-padded
//             shortcut): the channels before and after it are never pruned
enum class channel_role { produces, follows, passes, flattens, barrier };

// What a layer contributes to a fused convolution epilogue in evaluation (core/chain.hpp):
// a per-channel affine map (batch_norm), or a clamp (relu, relu6).
enum class fusion { none, affine, relu, relu6 };

template <class L>
constexpr fusion fuses_as_v = [] {
    if constexpr (requires { L::fuses_as; })
        return L::fuses_as;
    else
        return fusion::none;
}();

// Whether the layer's per-channel scale (a batch norm's gamma) scores channels for pruning
// and takes the L1 sparsity gradient.
template <class L>
constexpr bool has_channel_scale_v = [] {
    if constexpr (requires { L::channel_scale; })
        return L::channel_scale;
    else
        return false;
}();

// Whether the layer's output is a rectifier's (relu, relu6): where activation sparsity is
// measured (prune/scores.hpp).
template <class L>
constexpr bool rectifies_v = [] {
    if constexpr (requires { L::rectifies; })
        return L::rectifies;
    else
        return false;
}();

namespace contract {

// Stand-ins that the concept checks a layer's visitors against. The real ones are
// quant::folder (quant/fold.hpp) and the callbacks of for_each_tensor.
struct tensor_visitor {
    void operator()(const tensor_ref&) const {}
};
struct int8_folder {
    void conv(std::size_t, std::size_t cin, std::size_t cout, std::size_t k, std::size_t stride, std::size_t pad,
              std::size_t oh, std::size_t ow, const float* weight, const float* bias);
    void linear(std::size_t, std::size_t cin, std::size_t cout, const float* weight, const float* bias);
    void batch_norm(std::size_t, const float* gamma, const float* beta, const float* mean, const float* var, float eps);
    void depthwise_conv(std::size_t, std::size_t c, std::size_t k, std::size_t stride, std::size_t pad, std::size_t oh,
                        std::size_t ow, const float* weight, const float* bias);
    void relu(std::size_t);
    void relu6(std::size_t);
    void max_pool(std::size_t, std::size_t k, std::size_t stride, std::size_t oh, std::size_t ow);
    void avg_pool(std::size_t, std::size_t k, std::size_t stride, std::size_t oh, std::size_t ow);
    void subsample_pad(std::size_t, std::size_t before, std::size_t after, std::size_t stride, std::size_t oh,
                       std::size_t ow);
    struct point {};
    point here();
    void restore(const point&);
    void add(std::size_t, const std::vector<point>& parts, bool relu);
    void concat(std::size_t, const std::vector<point>& parts);
    void flatten(std::size_t);
    void identity(std::size_t);
    void unsupported(std::size_t, std::string_view kind);
};

}  // namespace contract

// Shared by leaf and composite layers.
template <class L>
concept layer_common = requires(L& l, const L& cl, run_context& cx, const float* x, float* y, std::size_t n,
                                contract::tensor_visitor v, contract::int8_folder& q) {
    { L::kind } -> std::convertible_to<std::string_view>;
    { L::in_shape } -> std::convertible_to<shape>;
    { L::out_shape } -> std::convertible_to<shape>;
    { L::parameter_count } -> std::convertible_to<std::size_t>;
    { L::macs } -> std::convertible_to<std::size_t>;
    { L::workspace(n) } -> std::convertible_to<std::size_t>;
    l.forward(cx, x, y, n);
    l.backward(cx, x, x, x, y, n);
    l.set_input_channels(n);
    { cl.input_channels() } -> std::convertible_to<std::size_t>;
    { cl.out_channels() } -> std::convertible_to<std::size_t>;
    l.for_each_tensor(v);
    { cl.declaration() } -> std::convertible_to<std::string>;
    l.fold_int8(q, n);
};

// A leaf: one node of the network's description, with its role and cost.
template <class L>
concept leaf_layer = layer_common<L> && requires(std::size_t n) {
    { L::role } -> std::convertible_to<channel_role>;
    { L::cost_at(n, n) } -> std::same_as<cost>;
};

// Surgery, by role: what pruning calls on the members of a channel group.
template <class L>
concept channel_producer = leaf_layer<L> &&
                           L::role == channel_role::produces&& requires(L& l, std::span<const std::size_t> keep,
                                                                        std::size_t group) {
    l.keep_outputs(keep);
    l.keep_inputs(keep, group);
    { l.channel_origin() } -> std::convertible_to<std::span<const std::size_t>>;
};
template <class L>
concept channel_follower = leaf_layer<L> &&
                           L::role == channel_role::follows&& requires(L& l, std::span<const std::size_t> keep) {
    l.keep_channels(keep);
};

// A composite holds other layers: it numbers their nodes and describes them (composite.hpp).
template <class L>
concept composite_layer = layer_common<L> && requires {
    L::node_count;
    L::composite;
};

// The contract: a leaf whose role has its surgery, or a composite.
template <class L>
concept bound_layer = composite_layer<L> ||
    (leaf_layer<L> && (L::role != channel_role::produces || channel_producer<L>)&&(L::role != channel_role::follows ||
                                                                                   channel_follower<L>));

// Nodes a layer takes in the network's description: 1 for a leaf.
template <class L>
constexpr std::size_t node_count_v = [] {
    if constexpr (composite_layer<L>)
        return L::node_count;
    else
        return std::size_t{1};
}();

}  // namespace sgp
