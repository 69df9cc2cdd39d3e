#pragma once
// Finiteness checks for a network's tensors: a diverged training run, or a weights file
// holding NaN or Inf, must stop with the tensor's name instead of flowing on into
// checkpoints, quantization or an export.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "sgp/core/error.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp {

// Whether all n values are finite. An integer test of the exponent bits: it vectorises, so a
// pass over every parameter costs far less than the SGD step that wrote them.
inline bool all_finite(const float* p, std::size_t n) {
    std::uint32_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t b;
        std::memcpy(&b, p + i, sizeof b);
        bad |= static_cast<std::uint32_t>((b & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

// The first non-finite value of a tensor, for the message ("inf at index 12").
inline std::string first_non_finite(const float* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return std::to_string(p[i]) + " at index " + std::to_string(i);
    return "none";
}

// Fails "<where>: tensor '<key>' (layer i, <kind>) holds <value>: <why>" for the first
// tensor of `net` (parameters, and buffers unless only_parameters) with a NaN or Inf; i is
// the layer's node id in the network's description.
template <class Net>
void require_finite(Net& net, const std::string& where, const std::string& why, bool only_parameters = false) {
    const auto& g = Net::graph();
    net.for_each_node([&](std::size_t i, auto& l) {
        l.for_each_tensor([&](const tensor_ref& t) {
            if (only_parameters && t.role != tensor_role::parameter) return;
            if (!t.value || all_finite(t.value, t.size())) return;  // an int64 counter has no value
            fail(where, "tensor '" + g.nodes[i].path + "." + std::string(t.name) + "' (layer " + std::to_string(i) +
                            ", " + std::string(g.nodes[i].kind) + ") holds " + first_non_finite(t.value, t.size()) +
                            ": " + why);
        });
    });
}

}  // namespace sgp
