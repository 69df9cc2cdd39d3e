#pragma once
// Parameters and multiply-adds of a network at given active widths (per image). At the
// declared widths this equals Net::parameter_count and Net::macs; pruning uses it to cost a
// choice of channels before making it.
#include <array>
#include <cstddef>
#include <utility>

namespace sgp {

struct cost {
    std::size_t parameters = 0, macs = 0;
};

// widths[i] = active channels of activation i (0 = the input), as sequential::widths() gives.
template <class Net>
constexpr cost cost_at(const std::array<std::size_t, Net::layer_count + 1>& widths) {
    cost c;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (
            [&] {
                using L = typename Net::template layer_type<I>;
                const std::size_t in = widths[I], out = widths[I + 1];
                const std::size_t cap_in = Net::shapes[I].c, cap_out = Net::shapes[I + 1].c;
                if constexpr (L::kind == "conv2d" || L::kind == "linear") {
                    // Weights scale with both widths, the bias with the output width.
                    const std::size_t bias = L::has_bias ? cap_out : 0;
                    c.parameters +=
                        (L::parameter_count - bias) / (cap_in * cap_out) * in * out + (L::has_bias ? out : 0);
                    c.macs += L::macs / (cap_in * cap_out) * in * out;
                } else if constexpr (L::kind == "batch_norm") {
                    c.parameters += 2 * in;
                }
            }(),
            ...);
    }
    (std::make_index_sequence<Net::layer_count>{});
    return c;
}

// The declared (unpruned) widths.
template <class Net>
constexpr std::array<std::size_t, Net::layer_count + 1> declared_widths() {
    std::array<std::size_t, Net::layer_count + 1> w{};
    for (std::size_t i = 0; i <= Net::layer_count; ++i) w[i] = Net::shapes[i].c;
    return w;
}

}  // namespace sgp
