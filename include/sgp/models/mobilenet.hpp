#pragma once
// MobileNets for CIFAR-sized images, named as PyTorch names their modules so that state_dicts
// move both ways:
//   mobilenet_v1 (Howard et al. 2017): a 3x3 stem, then 13 blocks of a depthwise 3x3 and a
//     pointwise 1x1 convolution, each with batch norm and ReLU (keys conv1, bn1,
//     layers.i.conv1 / bn1 / conv2 / bn2, linear, as the common CIFAR version names them);
//   mobilenet_v2 (Sandler et al. 2018): inverted residual blocks (1x1 expansion, depthwise
//     3x3, linear 1x1 projection; ReLU6; an identity shortcut where stride 1 keeps the
//     channels) with torchvision's module names (features.i.conv.j, classifier.1).
// CIFAR strides: stride 1 in the stem (and in V2's 24-channel stage), as CIFAR versions do.
// `Div` divides every channel count (8: the golden tests' small networks); `Dropout` is the
// classifier's dropout of V2 (0.2 in torchvision). tests/test_models.cpp checks the
// parameter counts against the published ones.
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "sgp/core/sequential.hpp"
#include "sgp/layers/batch_norm.hpp"
#include "sgp/layers/chain.hpp"
#include "sgp/layers/conv2d.hpp"
#include "sgp/layers/depthwise_conv2d.hpp"
#include "sgp/layers/dropout.hpp"
#include "sgp/layers/flatten.hpp"
#include "sgp/layers/global_avg_pool.hpp"
#include "sgp/layers/linear.hpp"
#include "sgp/layers/named.hpp"
#include "sgp/layers/relu.hpp"
#include "sgp/layers/relu6.hpp"
#include "sgp/layers/residual.hpp"

namespace sgp::models {

namespace mobilenet_detail {
using namespace sgp::layers;

// V1: (output channels, stride) of the 13 blocks.
struct v1_spec {
    std::size_t out, stride;
};
inline constexpr std::array<v1_spec, 13> v1_blocks{{{64, 1},
                                                    {128, 2},
                                                    {128, 1},
                                                    {256, 2},
                                                    {256, 1},
                                                    {512, 2},
                                                    {512, 1},
                                                    {512, 1},
                                                    {512, 1},
                                                    {512, 1},
                                                    {512, 1},
                                                    {1024, 2},
                                                    {1024, 1}}};

template <std::size_t Out, std::size_t Stride>
using v1_block = chain<named<"conv1", depthwise3x3<Stride>>, named<"bn1", batch_norm>, relu,
                       named<"conv2", conv1x1<Out>>, named<"bn2", batch_norm>, relu>;

template <class In, std::size_t Classes, std::size_t Div, class Seq>
struct v1;
template <class In, std::size_t Classes, std::size_t Div, std::size_t... I>
struct v1<In, Classes, Div, std::index_sequence<I...>> {
    using type = sequential<In, named<"conv1", conv3x3<32 / Div>>, named<"bn1", batch_norm>, relu,
                            named<"layers", chain<v1_block<v1_blocks[I].out / Div, v1_blocks[I].stride>...>>,
                            global_avg_pool, flatten, named<"linear", linear<Classes>>>;
};

// V2: the inverted residual settings (expansion t, channels c, repeats n, first stride s).
struct v2_setting {
    std::size_t t, c, n, s;
};
inline constexpr std::array<v2_setting, 7> v2_settings{
    {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}};
struct v2_spec {
    std::size_t in, out, stride, t;
};
// The 17 blocks, in order, at channels divided by div.
constexpr std::array<v2_spec, 17> v2_blocks(std::size_t div) {
    std::array<v2_spec, 17> b{};
    std::size_t k = 0, in = 32 / div;
    for (const auto& s : v2_settings)
        for (std::size_t i = 0; i < s.n; ++i) {
            b[k++] = {in, s.c / div, i == 0 ? s.s : 1, s.t};
            in = s.c / div;
        }
    return b;
}

// conv: [1x1 expansion + BN + ReLU6,] depthwise 3x3 + BN + ReLU6, 1x1 projection + BN.
template <std::size_t In, std::size_t Out, std::size_t Stride, std::size_t T>
struct inverted_residual {
    static constexpr std::size_t hidden = In * T;
    using depthwise = chain<depthwise3x3<Stride>, batch_norm, relu6>;
    using conv =
        std::conditional_t<T == 1, chain<depthwise, conv1x1<Out>, batch_norm>,
                           chain<chain<conv1x1<hidden>, batch_norm, relu6>, depthwise, conv1x1<Out>, batch_norm>>;
    using type =
        std::conditional_t<Stride == 1 && In == Out, linear_residual<named<"conv", conv>>, chain<named<"conv", conv>>>;
};

template <std::size_t Div, std::size_t I>
using v2_block = typename inverted_residual<v2_blocks(Div)[I].in, v2_blocks(Div)[I].out, v2_blocks(Div)[I].stride,
                                            v2_blocks(Div)[I].t>::type;

template <class In, std::size_t Classes, std::size_t Div, float Dropout, class Seq>
struct v2;
template <class In, std::size_t Classes, std::size_t Div, float Dropout, std::size_t... I>
struct v2<In, Classes, Div, Dropout, std::index_sequence<I...>> {
    using type = sequential<In,
                            named<"features", chain<chain<conv3x3<32 / Div>, batch_norm, relu6>, v2_block<Div, I>...,
                                                    chain<conv1x1<1280 / Div>, batch_norm, relu6>>>,
                            global_avg_pool, flatten, named<"classifier", chain<dropout<Dropout>, linear<Classes>>>>;
};

}  // namespace mobilenet_detail

template <class In = input<1, 32, 32>, std::size_t Classes = 10, std::size_t Div = 1>
using mobilenet_v1 = typename mobilenet_detail::v1<In, Classes, Div, std::make_index_sequence<13>>::type;

template <class In = input<1, 32, 32>, std::size_t Classes = 10, std::size_t Div = 1, float Dropout = 0.2f>
using mobilenet_v2 = typename mobilenet_detail::v2<In, Classes, Div, Dropout, std::make_index_sequence<17>>::type;

}  // namespace sgp::models
