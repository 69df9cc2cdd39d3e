// Every layer's backward pass against central finite differences.
#include <doctest/doctest.h>

#include <sgp/sgp.hpp>

#include "helpers.hpp"

using namespace sgp::layers;
using sgp::shape;
using sgp_test::check_layer_gradients;
using sgp_test::random_vector;

template <class Decl, shape In>
auto make_layer(std::uint64_t seed) {
    typename Decl::template bind<In> l;
    sgp::rng r(seed);
    l.init(r);
    return l;
}

// Distinct values at least 0.01 apart and away from 0, in random order and sign: no
// perturbation of 1e-3 crosses ReLU's kink or changes a max pool's winner.
inline std::vector<float> spread_vector(std::size_t n, std::uint64_t seed) {
    std::vector<float> v(n);
    sgp::rng r(seed);
    for (std::size_t i = 0; i < n; ++i) v[i] = 0.1f + 0.01f * static_cast<float>(i);
    r.shuffle(v);
    for (auto& x : v)
        if (r.next() & 1) x = -x;
    return v;
}

TEST_CASE("conv2d 3x3, padding 1, no bias") {
    constexpr shape in{3, 5, 5};
    auto l = make_layer<conv3x3<4>, in>(1);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 2, 2), 2) <= 1.0);
}

TEST_CASE("conv2d 3x3, stride 2, padding 1, bias") {
    constexpr shape in{2, 7, 6};
    auto l = make_layer<conv2d<3, 3, 2, 1, true>, in>(3);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 2, 4), 2) <= 1.0);
}

TEST_CASE("conv2d 1x1 with bias (the identity column matrix path)") {
    constexpr shape in{4, 3, 3};
    auto l = make_layer<conv1x1<5, true>, in>(5);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 3, 6), 3) <= 1.0);
}

TEST_CASE("conv2d 5x5, no padding, stride 1") {
    constexpr shape in{2, 6, 6};
    auto l = make_layer<conv2d<2, 5, 1, 0>, in>(7);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 2, 8), 2) <= 1.0);
}

TEST_CASE("batch_norm in training mode") {
    constexpr shape in{3, 2, 2};
    auto l = make_layer<batch_norm, in>(9);
    // gamma and beta away from their defaults so every term of the gradient matters
    for (std::size_t c = 0; c < 3; ++c) {
        l.gamma()[c] = 0.5f + 0.3f * static_cast<float>(c);
        l.beta()[c] = 0.1f * static_cast<float>(c);
    }
    CHECK(check_layer_gradients(l, random_vector(in.size() * 4, 10), 4, 1e-2f, 2e-2, 3e-3) <= 1.0);
}

TEST_CASE("batch_norm after flatten (BatchNorm1d)") {
    constexpr shape in{5, 1, 1, true};
    auto l = make_layer<batch_norm, in>(11);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 6, 12), 6, 1e-2f, 2e-2, 3e-3) <= 1.0);
}

TEST_CASE("relu") {
    constexpr shape in{2, 3, 3};
    auto l = make_layer<relu, in>(0);
    CHECK(check_layer_gradients(l, spread_vector(in.size() * 2, 13), 2, 1e-3f) <= 1.0);
}

TEST_CASE("max_pool 2x2 and overlapping 3x3 stride 2") {
    constexpr shape in{2, 6, 6};
    auto a = make_layer<max_pool<2>, in>(0);
    CHECK(check_layer_gradients(a, spread_vector(in.size() * 2, 14), 2, 1e-3f) <= 1.0);
    constexpr shape in2{1, 7, 7};
    auto b = make_layer<max_pool<3, 2>, in2>(0);
    CHECK(check_layer_gradients(b, spread_vector(in2.size() * 2, 15), 2, 1e-3f) <= 1.0);
}

TEST_CASE("avg_pool and global_avg_pool") {
    constexpr shape in{2, 4, 4};
    auto a = make_layer<avg_pool<2>, in>(0);
    CHECK(check_layer_gradients(a, random_vector(in.size() * 2, 16), 2) <= 1.0);
    auto b = make_layer<avg_pool<3, 1>, in>(0);
    CHECK(check_layer_gradients(b, random_vector(in.size() * 2, 17), 2) <= 1.0);
    auto g = make_layer<global_avg_pool, in>(0);
    CHECK(check_layer_gradients(g, random_vector(in.size() * 3, 18), 3) <= 1.0);
}

TEST_CASE("flatten of a 3x2x2 map") {
    constexpr shape in{3, 2, 2};
    auto l = make_layer<flatten, in>(0);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 3, 19), 3) <= 1.0);
}

TEST_CASE("linear with and without bias") {
    constexpr shape in{6, 1, 1, true};
    auto a = make_layer<linear<4>, in>(20);
    CHECK(check_layer_gradients(a, random_vector(in.size() * 3, 21), 3) <= 1.0);
    auto b = make_layer<linear<2, false>, in>(22);
    CHECK(check_layer_gradients(b, random_vector(in.size() * 3, 23), 3) <= 1.0);
}

TEST_CASE("dropout in training mode (fixed mask per step)") {
    constexpr shape in{4, 2, 2};
    auto l = make_layer<dropout<0.5f>, in>(0);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 3, 24), 3) <= 1.0);
}

TEST_CASE("a narrowed conv (active widths below capacity) still differentiates correctly") {
    constexpr shape in{6, 4, 4};
    auto l = make_layer<conv3x3<8, true>, in>(25);
    l.set_input_channels(4);
    l.set_out_channels(5);
    CHECK(check_layer_gradients(l, random_vector(4 * 4 * 4 * 2, 26), 2) <= 1.0);
}

TEST_CASE("depthwise_conv2d: 3x3 stride 1 with bias, 3x3 stride 2, 5x5 unpadded") {
    constexpr shape in{3, 6, 5};
    auto a = make_layer<depthwise_conv2d<3, 1, 1, true>, in>(27);
    CHECK(check_layer_gradients(a, random_vector(in.size() * 2, 28), 2) <= 1.0);
    auto b = make_layer<depthwise3x3<2>, in>(29);
    CHECK(check_layer_gradients(b, random_vector(in.size() * 2, 30), 2) <= 1.0);
    constexpr shape in2{2, 7, 7};
    auto c = make_layer<depthwise_conv2d<5, 1, 0>, in2>(31);
    CHECK(check_layer_gradients(c, random_vector(in2.size() * 2, 32), 2) <= 1.0);
}

TEST_CASE("relu6 (values away from 0 and 6)") {
    constexpr shape in{2, 3, 3};
    auto l = make_layer<relu6, in>(0);
    auto x = spread_vector(in.size() * 2, 33);
    for (auto& v : x) v *= 27.f;  // 2.7 .. 10 in magnitude: both clamps and the linear part
    CHECK(check_layer_gradients(l, x, 2, 1e-3f) <= 1.0);
}

TEST_CASE("subsample_pad (the option-A shortcut)") {
    constexpr shape in{2, 5, 4};
    auto l = make_layer<subsample_pad<6>, in>(0);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 2, 34), 2) <= 1.0);
}

TEST_CASE("chain of layers as one layer") {
    constexpr shape in{2, 5, 5};
    auto l = make_layer<chain<conv3x3<3>, batch_norm, conv2d<2, 3, 2, 1, true>>, in>(35);
    CHECK(check_layer_gradients(l, random_vector(in.size() * 3, 36), 3, 1e-2f, 2e-2, 3e-3) <= 1.0);
}

TEST_CASE("residual: identity shortcut with ReLU after the add, projection shortcut, linear residual") {
    constexpr shape in{3, 5, 5};
    auto a = make_layer<residual<conv3x3<3, true>>, in>(37);
    CHECK(check_layer_gradients(a, spread_vector(in.size() * 2, 38), 2, 1e-3f) <= 1.0);
    auto b = make_layer<residual<conv2d<4, 3, 2, 1>, batch_norm, shortcut<conv2d<4, 1, 2, 0>, batch_norm>>, in>(39);
    CHECK(check_layer_gradients(b, random_vector(in.size() * 3, 40), 3, 1e-3f, 2e-2, 3e-3) <= 1.0);
    auto c = make_layer<linear_residual<conv1x1<6>, depthwise3x3<>, conv1x1<3>>, in>(41);
    CHECK(check_layer_gradients(c, random_vector(in.size() * 2, 42), 2) <= 1.0);
}

TEST_CASE("concat of two branches and of a branch with a single layer") {
    constexpr shape in{2, 4, 4};
    auto a = make_layer<concat<chain<conv1x1<3>, batch_norm>, chain<conv3x3<2, true>>>, in>(43);
    CHECK(check_layer_gradients(a, random_vector(in.size() * 3, 44), 3, 1e-3f, 2e-2, 3e-3) <= 1.0);
    auto b = make_layer<concat<conv1x1<2>, depthwise3x3<>>, in>(45);
    CHECK(check_layer_gradients(b, random_vector(in.size() * 2, 46), 2) <= 1.0);
}
