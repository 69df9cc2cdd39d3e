#pragma once
// The per-image shape of an activation, a compile-time value. `flat` marks the output of
// `flatten` (a feature vector): convolutions and pools refuse it, linear layers need it.
#include <cstddef>

namespace sgp {

struct shape {
    std::size_t c = 0, h = 0, w = 0;
    bool flat = false;

    constexpr std::size_t size() const { return c * h * w; }
    constexpr std::size_t plane() const { return h * w; }
    friend constexpr bool operator==(const shape&, const shape&) = default;
};

// The start of every layer list: the image a network takes (channels, height, width).
template <std::size_t C, std::size_t H, std::size_t W>
struct input {
    static_assert(C > 0 && H > 0 && W > 0, "input<C, H, W>: every dimension must be at least 1");
    static constexpr shape value{C, H, W, false};
};

}  // namespace sgp
