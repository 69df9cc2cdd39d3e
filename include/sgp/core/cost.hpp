#pragma once
// Parameters and multiply-adds (per image) of a layer or a network. Every layer states its own
// at given active widths (its cost_at); a network's at its current or hypothetical widths is
// the sum over its description's nodes (core/graph.hpp).
#include <cstddef>

namespace sgp {

struct cost {
    std::size_t parameters = 0, macs = 0;
    constexpr cost& operator+=(const cost& o) {
        parameters += o.parameters;
        macs += o.macs;
        return *this;
    }
    friend constexpr bool operator==(const cost&, const cost&) = default;
};

}  // namespace sgp
