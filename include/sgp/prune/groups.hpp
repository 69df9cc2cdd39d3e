#pragma once
// Channel groups: the channels that pruning removes together, found from the layer list at
// compile time. A group is a conv2d or linear layer (the producer) directly followed by a
// batch_norm, whose outputs feed the next conv2d or linear layer (the consumer) through
// layers that keep channels apart (ReLU, pools, dropout, flatten). Removing channel c
// removes the producer's output c, the batch norm's entry c, and the consumer's input c (after
// flatten: the consumer's H*W input columns of channel c).
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace sgp::prune {

struct channel_group {
    std::size_t producer = 0;     // layer index of the conv2d / linear whose outputs are the channels
    std::size_t norm = 0;         // its batch_norm (producer + 1)
    std::size_t consumer = 0;     // the next conv2d / linear; its input activation index is `consumer`
    std::size_t relu_output = 0;  // activation index of the first ReLU's output between them (0: none)
    std::size_t group = 1;        // consumer inputs per channel: H*W after a flatten, else 1
    std::size_t capacity = 0;     // static channel count
};

namespace detail {

constexpr bool produces(std::string_view k) {
    return k == "conv2d" || k == "linear";
}
constexpr bool passes_channels(std::string_view k) {
    return k == "relu" || k == "max_pool" || k == "avg_pool" || k == "global_avg_pool" || k == "dropout" ||
           k == "flatten";
}

// Fills out[] (when not null) and returns the number of groups.
template <class Net>
constexpr std::size_t find_groups(channel_group* out) {
    std::size_t n = 0;
    const auto& k = Net::kinds;
    for (std::size_t i = 0; i + 1 < Net::layer_count; ++i) {
        if (!produces(k[i]) || k[i + 1] != "batch_norm") continue;
        std::size_t group = 1, j = i + 2, relu = 0;
        while (j < Net::layer_count && passes_channels(k[j])) {
            if (k[j] == "flatten") group = Net::shapes[j].plane();
            if (k[j] == "relu" && relu == 0) relu = j + 1;
            ++j;
        }
        if (j == Net::layer_count || !produces(k[j])) continue;  // the last layer's channels are the classes
        if (out) out[n] = channel_group{i, i + 1, j, relu, group, Net::shapes[i + 1].c};
        ++n;
    }
    return n;
}

}  // namespace detail

// The prunable channel groups of Net, in layer order.
template <class Net>
inline constexpr auto channel_groups = [] {
    std::array<channel_group, detail::find_groups<Net>(nullptr)> g{};
    detail::find_groups<Net>(g.data());
    return g;
}();

// A readable fingerprint of a network's layer list, stored in pruning plans so that a plan
// is never applied to another network: "1x32x32 conv2d:64 batch_norm:64 relu:64 ...".
template <class Net>
std::string network_signature() {
    std::string s = std::to_string(Net::input_shape.c) + "x" + std::to_string(Net::input_shape.h) + "x" +
                    std::to_string(Net::input_shape.w);
    for (std::size_t i = 0; i < Net::layer_count; ++i)
        s += " " + std::string(Net::kinds[i]) + ":" + std::to_string(Net::shapes[i + 1].c);
    return s;
}

}  // namespace sgp::prune
