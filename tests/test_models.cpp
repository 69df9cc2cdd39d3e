// The declared model families: published parameter counts (compile time), the networks'
// descriptions and channel groups, declarations at pruned widths, and batch-norm
// recalibration. Their numerics against PyTorch are in test_torch_golden.cpp.
#include <doctest/doctest.h>

#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

using namespace sgp::layers;
namespace m = sgp::models;
namespace pr = sgp::prune;
using gray = sgp::input<1, 32, 32>;
using rgb = sgp::input<3, 32, 32>;

// He et al. 2016 (Table 6): ResNet-20 0.27 M, ResNet-56 0.85 M parameters on CIFAR-10, with
// option A shortcuts; exact counts as PyTorch counts them (tests/golden/param_counts.txt).
static_assert(m::resnet20<rgb>::parameter_count == 269'722);
static_assert(m::resnet56<rgb>::parameter_count == 853'018);
static_assert(m::resnet20<gray>::parameter_count == 269'434);
static_assert(m::resnet56<gray>::parameter_count == 852'730);
// The CIFAR ResNet-18 (3x3 stem, no stem pool, projection shortcuts): 11.17 M.
static_assert(m::resnet18<rgb>::parameter_count == 11'173'962);
static_assert(m::resnet18<gray>::parameter_count == 11'172'810);
// MobileNetV1 (Howard et al. 2017, Table 1: 4.2 M at 1000 classes) and MobileNetV2
// (torchvision's mobilenet_v2: 3,504,872 at 1000 classes; Sandler et al. 2018 report 3.4 M).
static_assert(m::mobilenet_v1<rgb, 1000>::parameter_count == 4'231'976);
static_assert(m::mobilenet_v1<rgb>::parameter_count == 3'217'226);
static_assert(m::mobilenet_v1<gray>::parameter_count == 3'216'650);
static_assert(m::mobilenet_v2<rgb, 1000>::parameter_count == 3'504'872);
static_assert(m::mobilenet_v2<rgb>::parameter_count == 2'236'682);
static_assert(m::mobilenet_v2<gray>::parameter_count == 2'236'106);
// Multiply-adds are compile-time too: ResNet-20 at 32x32, about 41 M (He et al.: 41 M FLOPs
// counted as multiply-adds); MobileNetV2's CIFAR strides keep the 32x32 map for two stages.
static_assert(m::resnet20<rgb>::macs > 40'000'000 && m::resnet20<rgb>::macs < 42'000'000);
static_assert(m::resnet56<rgb>::macs > 125'000'000 && m::resnet56<rgb>::macs < 127'000'000);

TEST_CASE("the description's costs equal the compile-time figures for every family") {
    auto check = []<class Net>() {
        const auto c = Net::graph().cost_at(Net::graph().declared_widths());
        CHECK(c.parameters == Net::parameter_count);
        CHECK(c.macs == Net::macs);
        Net net;
        CHECK(net.active_parameter_count() == Net::parameter_count);
        CHECK(net.active_macs() == Net::macs);
    };
    check.operator()<m::resnet20<gray>>();
    check.operator()<m::resnet56<gray>>();
    check.operator()<m::resnet18<rgb>>();
    check.operator()<m::mobilenet_v1<gray>>();
    check.operator()<m::mobilenet_v2<gray>>();
}

TEST_CASE("channel groups of the families") {
    // ResNet-56 (option A): the zero-padded shortcut is a barrier, so the stream is fixed and
    // every block's inner channels are one group: 27 groups.
    const auto& r56 = pr::channel_groups<m::resnet56<gray>>();
    CHECK(r56.size() == 27);
    for (const auto& g : r56) CHECK(!g.residual);
    CHECK(r56[0].name == "layer1.0.conv1");
    // ResNet-18 (projection shortcuts): each stage's stream is one coupled group of its
    // blocks' conv2 and the shortcut conv (and the stem's, for stage 1).
    const auto& r18 = pr::channel_groups<m::resnet18<gray>>();
    std::size_t streams = 0;
    for (const auto& g : r18)
        if (g.residual) {
            ++streams;
            CHECK(g.producers.size() >= 2);
        }
    CHECK(streams == 4);
    CHECK(r18.size() == 4 + 8);
    CHECK(pr::channel_groups<m::resnet18<gray>>(pr::residual_policy::keep_stream).size() == 8);
    // MobileNetV2: 17 expansion / depthwise groups (block 1 has no expansion: its group is the
    // stem's), the projections' outputs (coupled where identity shortcuts join them), the last 1x1.
    const auto& v2 = pr::channel_groups<m::mobilenet_v2<gray>>();
    CHECK(v2.size() == 25);
    CHECK(v2[0].followers.size() == 3);  // stem BN, block 1's depthwise conv and its BN
}

TEST_CASE("a pruned residual network declares itself at its pruned widths") {
    using net_t = sgp::sequential<sgp::input<2, 8, 8>, named<"stem", conv3x3<6>>, batch_norm, relu,
                                  residual<named<"conv1", conv3x3<4>>, named<"bn1", batch_norm>, relu,
                                           named<"conv2", conv3x3<6>>, named<"bn2", batch_norm>>,
                                  residual<conv2d<8, 3, 2, 1>, batch_norm, shortcut<conv2d<8, 1, 2, 0>, batch_norm>>,
                                  global_avg_pool, flatten, linear<3>>;
    net_t net;
    auto p = pr::current_plan(net);
    REQUIRE(p.layers.size() == 3);
    p.layers[0].keep = {0, 2, 5};  // the stem and the first block's output: one group
    p.layers[1].keep = {1, 3};
    p.layers[2].keep = {0, 1, 2, 3, 4};
    pr::apply(net, p);
    using pruned_t = sgp::sequential<sgp::input<2, 8, 8>, named<"stem", conv3x3<3>>, batch_norm, relu,
                                     residual<named<"conv1", conv3x3<2>>, named<"bn1", batch_norm>, relu,
                                              named<"conv2", conv3x3<3>>, named<"bn2", batch_norm>>,
                                     residual<conv2d<5, 3, 2, 1>, batch_norm, shortcut<conv2d<5, 1, 2, 0>, batch_norm>>,
                                     global_avg_pool, flatten, linear<3>>;
    CHECK(net.active_parameter_count() == pruned_t::parameter_count);
    CHECK(net.active_macs() == pruned_t::macs);
    const std::string d = net.declaration();
    CHECK(d.find("sgp::layers::named<\"stem\", sgp::layers::conv2d<3, 3, 1, 1, false>>") != std::string::npos);
    CHECK(d.find("sgp::layers::residual<sgp::layers::named<\"conv1\", sgp::layers::conv2d<2, 3, 1, 1, false>>") !=
          std::string::npos);
    CHECK(d.find("sgp::layers::shortcut<sgp::layers::conv2d<5, 1, 2, 0, false>") != std::string::npos);
    // The pruned network's weights load into the static type at the pruned widths.
    sgp_test::temp_dir dir("declaration");
    sgp::npz_archive a;
    sgp::add_state_dict(net, a);
    for (auto it = a.begin(); it != a.end();) it = it->first.rfind("prune.", 0) == 0 ? a.erase(it) : std::next(it);
    pruned_t small;
    sgp::read_state_dict(small, a, "pruned weights");
    const auto x = sgp_test::random_vector(2 * 2 * 64, 3);
    net.reserve(2);
    small.reserve(2);
    std::copy(x.begin(), x.end(), net.input_buffer());
    std::copy(x.begin(), x.end(), small.input_buffer());
    const float* a1 = net.forward(2, {});
    const std::vector<float> out(a1, a1 + 6);
    const float* a2 = small.forward(2, {});
    CHECK(std::vector<float>(a2, a2 + 6) == out);
}

TEST_CASE("batch-norm recalibration re-estimates running statistics from data, nothing else") {
    using net_t = sgp::sequential<sgp::input<1, 6, 6>, conv3x3<3>, batch_norm, relu, dropout<0.5f>, flatten, linear<2>>;
    net_t net(4);
    sgp::dataset d;
    d.channels = 1;
    d.height = d.width = 6;
    d.classes = 2;
    sgp::rng r(5);
    for (int i = 0; i < 16; ++i) {
        d.labels.push_back(static_cast<std::uint8_t>(i % 2));
        for (int p = 0; p < 36; ++p) d.images.push_back(static_cast<std::uint8_t>(r.below(256)));
    }
    sgp::batch_loader calib(d, {.batch = 8, .shuffle = false});
    // The expected statistics: the mean over the two batches of each batch's mean and unbiased
    // variance of the convolution's output (a cumulative average).
    std::vector<double> mean(3, 0), var(3, 0);
    {
        auto copy = net;
        std::vector<int> labels(8);
        calib.start_epoch(0);
        sgp::run_context cx;
        cx.fuse = false;
        copy.reserve(8);
        for (int b = 0; b < 2; ++b) {
            const std::size_t n = calib.next(copy.input_buffer(), labels.data());
            copy.forward(n, cx);
            const float* y = copy.activation(1);
            const std::size_t len = n * 36;
            for (std::size_t c = 0; c < 3; ++c) {
                double s = 0, q = 0;
                for (std::size_t i = 0; i < len; ++i) s += y[c * len + i];
                const double mu = s / static_cast<double>(len);
                for (std::size_t i = 0; i < len; ++i) q += (y[c * len + i] - mu) * (y[c * len + i] - mu);
                mean[c] += mu / 2;
                var[c] += q / static_cast<double>(len - 1) / 2;
            }
        }
    }
    std::vector<float> weights;
    net.for_each_tensor([&](const std::string&, const sgp::tensor_ref& t) {
        if (t.role == sgp::tensor_role::parameter) weights.insert(weights.end(), t.value, t.value + t.size());
    });
    CHECK(sgp::recalibrate_batch_norm(net, calib, 0) == 2);
    auto& bn = net.layer<1>();
    for (std::size_t c = 0; c < 3; ++c) {
        CHECK(bn.running_mean()[c] == doctest::Approx(mean[c]).epsilon(1e-5));
        CHECK(bn.running_var()[c] == doctest::Approx(var[c]).epsilon(1e-5));
    }
    std::vector<float> after;
    net.for_each_tensor([&](const std::string&, const sgp::tensor_ref& t) {
        if (t.role == sgp::tensor_role::parameter) after.insert(after.end(), t.value, t.value + t.size());
    });
    CHECK(after == weights);
}

TEST_CASE("a copy of a network copies its layers, not its batch buffers") {
    using net_t = m::resnet<sgp::input<1, 8, 8>, 3, 'B', 4, 1, 1>;
    net_t net(3);
    net.reserve(16);
    const auto x = sgp_test::random_vector(16 * 64, 4);
    std::copy(x.begin(), x.end(), net.input_buffer());
    const float* y = net.forward(16, {});
    const std::vector<float> out(y, y + 3 * 16);
    net_t copy = net;
    CHECK(copy.capacity() == 0);  // an undo point or a second trainer holds weights only
    CHECK_THROWS_WITH_AS(copy.forward(16, {}), doctest::Contains("call reserve first"), sgp::error);
    copy.reserve(16);
    std::copy(x.begin(), x.end(), copy.input_buffer());
    const float* z = copy.forward(16, {});
    CHECK(std::vector<float>(z, z + 3 * 16) == out);
}
