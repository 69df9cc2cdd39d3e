// Compile-time shapes, parameter counts and multiply-adds of declared networks, and the
// run-time active widths.
#include <doctest/doctest.h>

#include <sgp/sgp.hpp>

using namespace sgp::layers;
using sgp::shape;

// VGG13-BN, Network-Slimming variant, at 1x32x32: the figures the issue fixes.
using vgg = sgp::models::vgg13bn<>;
static_assert(vgg::parameter_count == 9'411'914);
static_assert(vgg::macs == 227'087'360);
static_assert(vgg::output_shape == shape{10, 1, 1, true});
static_assert(vgg::layer_count == 10 * 3 + 5 + 2);

// The source work's VGG13BN: 512 -> 4096 -> 4096 -> 10 classifier of 1x1 convolutions.
using src = sgp::models::vgg13bn_source<>;
static_assert(src::parameter_count == 28'346'698);  // "about 28.3 M" in the reference
static_assert(src::macs == 227'082'240 + 512 * 4096 + 4096 * 4096 + 4096 * 10);
static_assert(src::output_shape == shape{10, 1, 1, true});

// The same declaration at CIFAR-10's 3x32x32 input: only the first conv grows.
static_assert(sgp::models::vgg13bn<sgp::input<3, 32, 32>>::parameter_count == 9'411'914 + 2 * 9 * 64);

// Shapes through strides, padding and pools.
using odd = sgp::sequential<sgp::input<3, 11, 13>, conv2d<8, 3, 2, 1, true>, max_pool<3, 2>, conv2d<4, 1, 1, 0>,
                            avg_pool<2>, global_avg_pool, flatten, linear<5, false>, dropout<0.25f>>;
static_assert(odd::shapes[1] == shape{8, 6, 7});
static_assert(odd::shapes[2] == shape{8, 2, 3});
static_assert(odd::shapes[3] == shape{4, 2, 3});
static_assert(odd::shapes[4] == shape{4, 1, 1});
static_assert(odd::shapes[5] == shape{4, 1, 1});
static_assert(odd::shapes[6] == shape{4, 1, 1, true});
static_assert(odd::parameter_count == 8 * 3 * 9 + 8 + 4 * 8 + 5 * 4);
static_assert(odd::macs == 8 * 42 * 27 + 4 * 6 * 8 + 5 * 4);

// The width-based cost model (the description's nodes, each with its layer's cost_at) agrees
// with the layers' compile-time figures at the declared widths.
template <class Net>
void declared_cost_matches() {
    const auto c = Net::graph().cost_at(Net::graph().declared_widths());
    CHECK(c.parameters == Net::parameter_count);
    CHECK(c.macs == Net::macs);
}
TEST_CASE("the width-based cost model equals the compile-time figures at the declared widths") {
    declared_cost_matches<vgg>();
    declared_cost_matches<src>();
    declared_cost_matches<odd>();
}

TEST_CASE("compile-time figures are also visible at run time") {
    CHECK(vgg::parameter_count == 9'411'914);
    CHECK(vgg::macs == 227'087'360);
}

TEST_CASE("a fresh network's active figures equal its static ones") {
    odd net;
    CHECK(net.active_parameter_count() == odd::parameter_count);
    CHECK(net.active_macs() == odd::macs);
    const auto w = net.widths();
    for (std::size_t i = 0; i < w.size(); ++i) CHECK(w[i] == odd::shapes[i].c);
}

TEST_CASE("narrowing a layer's active width lowers the run-time cost and propagates") {
    using net_t = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<8>, batch_norm, relu, max_pool<2>, conv3x3<6>,
                                  batch_norm, relu, flatten, linear<3>>;
    net_t net;
    net.layer<0>().set_out_channels(5);
    net.update_widths();
    const auto w = net.widths();
    CHECK(w[1] == 5);
    CHECK(w[4] == 5);  // through BN, ReLU and the pool
    CHECK(net.layer<4>().input_channels() == 5);
    // conv 1->5: 45 weights; BN 10; conv 5->6: 270; BN 12; linear 6*16 -> 3: 288 + 3
    CHECK(net.active_parameter_count() == 45 + 10 + 270 + 12 + 288 + 3);
    CHECK(net.active_macs() == 5 * 64 * 9 + 6 * 16 * 5 * 9 + 3 * 96);
    // The network still runs at the narrowed width.
    net.reserve(2);
    for (std::size_t i = 0; i < 128; ++i) net.input_buffer()[i] = static_cast<float>(i % 5);
    sgp::run_context cx;
    const float* out = net.forward(2, cx);
    for (std::size_t i = 0; i < 6; ++i) CHECK(std::isfinite(out[i]));
}

TEST_CASE("state_dict keys follow PyTorch's nn.Sequential") {
    odd net;
    std::vector<std::string> keys;
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref&) { keys.push_back(k); });
    CHECK(keys == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "6.weight"});
    vgg v;
    std::size_t n = 0;
    v.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (k == "1.num_batches_tracked") CHECK(t.counter != nullptr);
        if (k == "36.weight") CHECK(t.dims == std::vector<std::size_t>{10, 512});
        ++n;
    });
    CHECK(n == 10 * (1 + 5) + 2);
}

TEST_CASE("forward refuses a batch larger than the reserved buffers") {
    odd net;
    net.reserve(2);
    sgp::run_context cx;
    CHECK_THROWS_WITH_AS(net.forward(3, cx), doctest::Contains("reserved for 2"), sgp::error);
}
