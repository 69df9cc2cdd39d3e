#pragma once
// VGG networks declared from a configuration list, as the literature writes them:
// a number is a 3x3 conv (no bias) + batch_norm + relu block, `M` a 2x2 max pool.
#include <cstddef>

#include "sgp/core/sequential.hpp"
#include "sgp/layers/batch_norm.hpp"
#include "sgp/layers/conv2d.hpp"
#include "sgp/layers/dropout.hpp"
#include "sgp/layers/flatten.hpp"
#include "sgp/layers/linear.hpp"
#include "sgp/layers/max_pool.hpp"
#include "sgp/layers/relu.hpp"

namespace sgp::models {

inline constexpr std::size_t M = 0;  // a 2x2 max pool in a VGG configuration

template <class... T>
struct type_list {};

namespace detail {
template <class... Ls>
struct concat;
template <class... A>
struct concat<type_list<A...>> {
    using type = type_list<A...>;
};
template <class... A, class... B, class... Rest>
struct concat<type_list<A...>, type_list<B...>, Rest...> {
    using type = typename concat<type_list<A..., B...>, Rest...>::type;
};

template <std::size_t C, class BN>
struct vgg_block {
    using type = type_list<layers::conv3x3<C>, BN, layers::relu>;
};
template <class BN>
struct vgg_block<M, BN> {
    using type = type_list<layers::max_pool<2>>;
};

template <class In, class List>
struct to_sequential;
template <class In, class... L>
struct to_sequential<In, type_list<L...>> {
    using type = sequential<In, L...>;
};
}  // namespace detail

// The feature extractor for a configuration, as a type_list of layers.
template <class BN, std::size_t... Cfg>
using vgg_features = typename detail::concat<typename detail::vgg_block<Cfg, BN>::type...>::type;

// sequential<In, features..., classifier...>
template <class In, class Features, class Classifier>
using make_sequential = typename detail::to_sequential<In, typename detail::concat<Features, Classifier>::type>::type;

// VGG13-BN as in Network Slimming (Liu et al. 2017): five conv stages, then a single linear
// classifier. At 1x32x32 and 10 classes: 9,411,914 parameters, 227,087,360 multiply-adds.
template <class In = input<1, 32, 32>, std::size_t Classes = 10>
using vgg13bn =
    make_sequential<In, vgg_features<layers::batch_norm, 64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M>,
                    type_list<layers::flatten, layers::linear<Classes>>>;

// The source work's VGG13BN: the same features (BN gamma initialised to 0.5) and a
// classifier of 1x1 convolutions 512 -> 4096 -> 4096 -> classes with BN, ReLU and dropout.
template <class In = input<1, 32, 32>, std::size_t Classes = 10>
using vgg13bn_source = make_sequential<
    In, vgg_features<layers::batch_norm_t<0.5f>, 64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M>,
    type_list<layers::conv1x1<4096, true>, layers::batch_norm_t<0.5f>, layers::relu, layers::dropout<0.5f>,
              layers::conv1x1<4096, true>, layers::batch_norm_t<0.5f>, layers::relu, layers::dropout<0.5f>,
              layers::conv1x1<Classes, true>, layers::flatten>>;

// VGG13-BN at a quarter of the width: the demo size, trained in minutes on two cores.
template <class In = input<1, 32, 32>, std::size_t Classes = 10>
using vgg13bn_quarter =
    make_sequential<In, vgg_features<layers::batch_norm, 16, 16, M, 32, 32, M, 64, 64, M, 128, 128, M, 128, 128, M>,
                    type_list<layers::flatten, layers::linear<Classes>>>;

}  // namespace sgp::models
