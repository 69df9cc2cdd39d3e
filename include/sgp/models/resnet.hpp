#pragma once
// ResNets for CIFAR-sized images (He et al. 2016), declared as PyTorch's CIFAR ResNets name
// their modules (conv1, bn1, layer1.0.conv1, ..., layer1.0.shortcut.0, linear), so their
// state_dicts move both ways:
//   resnet<In, Classes, Shortcut, Width, Blocks...>   a 3x3 stem of Width channels (no pool),
//       one stage per entry of Blocks (that many basic blocks of Width * 2^s channels, the
//       first of stages s > 0 with stride 2), global average pooling and a linear classifier.
//   Shortcut 'A': the parameter-free subsample-and-zero-pad shortcut of the paper's CIFAR
//       networks; 'B': a 1x1 convolution + batch norm projection where the shape changes.
// resnet20 / resnet56 (option A, 16 wide) and resnet18 (option B, 64 wide, [2, 2, 2, 2]) are
// the published ones; tests/test_models.cpp checks their parameter counts.
#include <cstddef>
#include <type_traits>
#include <utility>

#include "sgp/core/sequential.hpp"
#include "sgp/layers/batch_norm.hpp"
#include "sgp/layers/chain.hpp"
#include "sgp/layers/conv2d.hpp"
#include "sgp/layers/flatten.hpp"
#include "sgp/layers/global_avg_pool.hpp"
#include "sgp/layers/linear.hpp"
#include "sgp/layers/named.hpp"
#include "sgp/layers/relu.hpp"
#include "sgp/layers/residual.hpp"
#include "sgp/layers/subsample_pad.hpp"

namespace sgp::models {

namespace resnet_detail {
using namespace sgp::layers;

template <std::size_t S>
struct stage_name;
template <>
struct stage_name<0> {
    static constexpr fixed_string value = "layer1";
};
template <>
struct stage_name<1> {
    static constexpr fixed_string value = "layer2";
};
template <>
struct stage_name<2> {
    static constexpr fixed_string value = "layer3";
};
template <>
struct stage_name<3> {
    static constexpr fixed_string value = "layer4";
};

// conv1 -> bn1 -> relu -> conv2 -> bn2, + shortcut, -> relu.
template <std::size_t C, std::size_t Stride, class... Shortcut>
using block_t = residual<named<"conv1", conv2d<C, 3, Stride, 1>>, named<"bn1", batch_norm>, relu,
                         named<"conv2", conv3x3<C>>, named<"bn2", batch_norm>, Shortcut...>;
template <std::size_t In, std::size_t C, std::size_t Stride, char Shortcut>
struct basic_block {
    static_assert(Shortcut == 'A' || Shortcut == 'B', "resnet: the shortcut option is 'A' or 'B'");
    using projection = std::conditional_t<Shortcut == 'A', shortcut<subsample_pad<C, Stride>>,
                                          shortcut<conv2d<C, 1, Stride, 0>, batch_norm>>;
    using type = std::conditional_t<Stride == 1 && In == C, block_t<C, Stride>, block_t<C, Stride, projection>>;
};

template <std::size_t Width, std::size_t S, std::size_t N, char Shortcut>
struct stage {
    static constexpr std::size_t C = Width << S;
    template <std::size_t B>
    using block = typename basic_block<(B == 0 ? (S == 0 ? Width : (Width << (S - 1))) : C), C,
                                       (B == 0 && S > 0 ? 2 : 1), Shortcut>::type;
    template <class Seq>
    struct make;
    template <std::size_t... B>
    struct make<std::index_sequence<B...>> {
        using type = chain<block<B>...>;
    };
    using type = named<stage_name<S>::value, typename make<std::make_index_sequence<N>>::type>;
};

template <class In, std::size_t Classes, char Shortcut, std::size_t Width, class Seq, std::size_t... Blocks>
struct network;
template <class In, std::size_t Classes, char Shortcut, std::size_t Width, std::size_t... S, std::size_t... Blocks>
struct network<In, Classes, Shortcut, Width, std::index_sequence<S...>, Blocks...> {
    static_assert(sizeof...(Blocks) >= 1 && sizeof...(Blocks) <= 4, "resnet: one to four stages");
    using type = sequential<In, named<"conv1", conv3x3<Width>>, named<"bn1", batch_norm>, relu,
                            typename stage<Width, S, Blocks, Shortcut>::type..., global_avg_pool, flatten,
                            named<"linear", linear<Classes>>>;
};

}  // namespace resnet_detail

template <class In, std::size_t Classes, char Shortcut, std::size_t Width, std::size_t... Blocks>
using resnet = typename resnet_detail::network<In, Classes, Shortcut, Width,
                                               std::make_index_sequence<sizeof...(Blocks)>, Blocks...>::type;

// ResNet-20 and ResNet-56 for CIFAR (He et al. 2016, section 4.2): 0.27 M and 0.85 M parameters.
template <class In = input<1, 32, 32>, std::size_t Classes = 10, std::size_t Width = 16>
using resnet20 = resnet<In, Classes, 'A', Width, 3, 3, 3>;
template <class In = input<1, 32, 32>, std::size_t Classes = 10, std::size_t Width = 16>
using resnet56 = resnet<In, Classes, 'A', Width, 9, 9, 9>;
// ResNet-18, CIFAR variant (3x3 stem, no stem pool, projection shortcuts): 11.17 M parameters.
template <class In = input<1, 32, 32>, std::size_t Classes = 10, std::size_t Width = 64>
using resnet18 = resnet<In, Classes, 'B', Width, 2, 2, 2, 2>;

}  // namespace sgp::models
