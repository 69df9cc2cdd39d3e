#pragma once
// named<"conv1", conv3x3<64>>: a layer with a name in its chain, as a PyTorch module names its
// children. The name is the layer's key in the state_dict ("layer1.0.conv1.weight") and its
// path in reports; a layer without one is keyed by its index, as in nn.Sequential.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "sgp/core/shape.hpp"

namespace sgp::layers {

// A string literal as a template argument.
template <std::size_t N>
struct fixed_string {
    char text[N]{};
    constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, text); }
    constexpr std::string_view view() const { return {text, N - 1}; }
};

template <fixed_string Name, class D>
struct named {
    static_assert(Name.view().size() > 0 && Name.view().find('.') == std::string_view::npos,
                  "named<Name, Layer>: a name is one non-empty PyTorch attribute name, without dots");
    static constexpr std::string_view name = Name.view();
    using declaration = D;
    template <shape In>
    using bind = typename D::template bind<In>;
};

namespace detail {
// The name of child I declared as D: its named<> name, or its index.
template <class D>
std::string child_name(std::size_t index) {
    if constexpr (requires { D::name; })
        return std::string(D::name);
    else
        return std::to_string(index);
}
// "a.b" from a path and a child name ("b" at the top).
inline std::string join_path(const std::string& path, const std::string& name) {
    return path.empty() ? name : path + "." + name;
}
// The child's declaration, wrapped in named<> when it has a name.
template <class D>
std::string named_declaration(const std::string& inner) {
    if constexpr (requires { D::name; })
        return "sgp::layers::named<\"" + std::string(D::name) + "\", " + inner + ">";
    else
        return inner;
}
}  // namespace detail

}  // namespace sgp::layers
