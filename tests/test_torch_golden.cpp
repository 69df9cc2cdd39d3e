// Whole networks against PyTorch 1.13: forward outputs, loss, every parameter gradient and
// the running statistics, from fixtures written by tests/golden/make_golden.py (float64
// reference). Loading the fixtures' state_dicts also proves that PyTorch weights saved with
// numpy load into sgp.
#include <doctest/doctest.h>

#include <cstring>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

using namespace sgp::layers;

using net_a =
    sgp::sequential<sgp::input<2, 9, 9>, conv2d<4, 3, 1, 1>, batch_norm, relu, max_pool<2>, conv2d<6, 3, 2, 1, true>,
                    batch_norm, relu, conv1x1<5, true>, flatten, linear<7>, relu, linear<3>>;
using net_b = sgp::sequential<sgp::input<1, 6, 6>, conv2d<3, 3, 1, 0, true>, avg_pool<2>, batch_norm, global_avg_pool,
                              flatten, linear<2>>;

namespace {

std::vector<double> doubles(const sgp::npz_archive& a, const std::string& key) {
    const auto it = a.find(key);
    REQUIRE_MESSAGE(it != a.end(), "fixture has no " << key);
    REQUIRE(it->second.dtype == "<f8");
    std::vector<double> v(it->second.count());
    std::memcpy(v.data(), it->second.data.data(), v.size() * sizeof(double));
    return v;
}

constexpr double tolerance = 1e-4;  // relative error, float32 against the float64 reference

// The fixture's state_dict keys in order ('|S<n>' byte strings, NUL-padded).
std::vector<std::string> fixture_keys(const sgp::npz_archive& a) {
    const auto& k = a.at("keys");
    const std::size_t item = std::stoul(k.dtype.substr(2));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < k.count(); ++i) {
        std::string s(reinterpret_cast<const char*>(k.data.data()) + i * item, item);
        out.push_back(s.substr(0, s.find('\0')));
    }
    return out;
}

std::int64_t int64_scalar(const sgp::npz_archive& a, const std::string& key) {
    std::int64_t v = 0;
    REQUIRE(a.at(key).data.size() >= 8);
    std::memcpy(&v, a.at(key).data.data(), 8);
    return v;
}

// Three SGD steps on the fixture's batch (its sgd_lr, sgd_momentum, sgd_weight_decay), then
// every parameter and running statistic against PyTorch's. The fixtures are chosen
// well-conditioned (make_golden.py: a float32-sized perturbation moves no reference array by
// more than 2e-6), so float32 can be held to 1e-4; a fixture that could not be
// (sgd_conditioned = 0) is checked for finiteness and its first loss only.
template <class Net>
void check_sgd_steps(const sgp::npz_archive& a, const std::vector<float>& x, const std::vector<int>& labels) {
    const bool exact = int64_scalar(a, "sgd_conditioned") == 1;
    const std::size_t n = labels.size(), k = Net::output_shape.c;
    Net net;
    sgp::read_state_dict(net, a, "fixture", "state.");
    net.set_input_nchw(x.data(), n);
    sgp::sgd o{.lr = static_cast<float>(doubles(a, "sgd_lr")[0]),
               .momentum = static_cast<float>(doubles(a, "sgd_momentum")[0]),
               .weight_decay = static_cast<float>(doubles(a, "sgd_weight_decay")[0])};
    sgp::sgd_state st;
    sgp::run_context cx;
    cx.training = true;
    std::vector<float> dlogits(n * k);
    const auto losses = doubles(a, "sgd_losses");
    for (int step = 0; step < 3; ++step) {
        const auto r = sgp::softmax_cross_entropy(net.forward(n, cx), labels.data(), k, n, dlogits.data());
        if (exact || step == 0)
            CHECK(r.loss == doctest::Approx(losses[static_cast<std::size_t>(step)]).epsilon(tolerance));
        net.backward(dlogits.data(), cx);
        net.for_each_tensor([&](const std::string& key, const sgp::tensor_ref& t) {
            if (t.grad) CHECK(st.step(o, o.lr, key, t));
        });
    }
    std::size_t checked = 0;
    net.for_each_tensor([&](const std::string& key, const sgp::tensor_ref& t) {
        if (!t.value) return;
        const std::string ref = t.grad ? "sgd." + key : "sgd_after." + key;
        if (!a.count(ref)) return;
        if (exact) {
            const auto v = doubles(a, ref);
            const double e = sgp_test::relative_error(t.value, v.data(), v.size());
            CHECK_MESSAGE(e <= tolerance, key << " after 3 SGD steps: relative error " << e);
        } else {
            CHECK(sgp::all_finite(t.value, t.size()));
        }
        ++checked;
    });
    CHECK(checked > 0);
}

template <class Net>
void check_against_torch(const std::string& fixture) {
    const std::string path = std::string(SGP_GOLDEN_DIR) + "/" + fixture;
    const auto a = sgp::load_npz(path);
    const auto& x = a.at("x");
    const std::size_t n = x.shape.at(0), k = Net::output_shape.c;
    const auto xv = x.to_floats("x");
    std::vector<int> labels(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v;
        std::memcpy(&v, a.at("labels").data.data() + i * 8, 8);
        labels[i] = static_cast<int>(v);
    }
    sgp::run_context cx;
    Net net;
    sgp::read_state_dict(net, a, path, "state.");
    if (a.count("keys")) {
        // The network names exactly PyTorch's keys, in PyTorch's order.
        std::vector<std::string> keys;
        net.for_each_tensor([&](const std::string& key, const sgp::tensor_ref&) { keys.push_back(key); });
        CHECK(keys == fixture_keys(a));
        CHECK(static_cast<std::int64_t>(Net::parameter_count) == int64_scalar(a, "param_count"));
    }
    net.set_input_nchw(xv.data(), n);
    // Runs the fixture's batch and compares the [K][N] output with the reference [N][K].
    auto forward_matches = [&](bool training, const char* reference) {
        cx.training = training;
        const float* out = net.forward(n, cx);
        const auto ref = doubles(a, reference);
        std::vector<float> got(n * k);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t c = 0; c < k; ++c) got[i * k + c] = out[c * n + i];
        CHECK(sgp_test::relative_error(got.data(), ref.data(), got.size()) <= tolerance);
        return out;
    };

    SUBCASE("evaluation-mode outputs of a PyTorch state_dict") {
        forward_matches(false, "eval_logits");
    }
    SUBCASE("training-mode forward, loss, gradients and running statistics") {
        const float* out = forward_matches(true, "logits");
        std::vector<float> dlogits(n * k);
        const auto r = sgp::softmax_cross_entropy(out, labels.data(), k, n, dlogits.data());
        CHECK(r.loss == doctest::Approx(doubles(a, "loss")[0]).epsilon(tolerance));
        net.backward(dlogits.data(), cx);
        // Gradients that vanish in exact arithmetic (a bias before batch norm) are compared
        // absolutely, against 1e-2 of the largest gradient norm; all others relatively.
        double largest = 0;
        for (const auto& [key, arr] : a)
            if (key.rfind("grad.", 0) == 0) {
                const auto g = doubles(a, key);
                double s = 0;
                for (double v : g) s += v * v;
                largest = std::max(largest, std::sqrt(s));
            }
        std::size_t checked = 0;
        net.for_each_tensor([&](const std::string& key, const sgp::tensor_ref& t) {
            if (t.grad) {
                const auto g = doubles(a, "grad." + key);
                REQUIRE(g.size() == t.size());
                const double e = sgp_test::relative_error(t.grad, g.data(), g.size(), 1e-2 * largest);
                CHECK_MESSAGE(e <= tolerance, "gradient of " << key << ": relative error " << e);
                ++checked;
            } else if (t.value && a.count("after." + key)) {
                const auto v = doubles(a, "after." + key);
                CHECK_MESSAGE(sgp_test::relative_error(t.value, v.data(), v.size()) <= tolerance, key);
                ++checked;
            }
        });
        CHECK(checked > 0);
    }
    if (a.count("sgd_steps")) SUBCASE("three SGD steps: weights and running statistics") {
            check_sgd_steps<Net>(a, xv, labels);
        }
}

}  // namespace

TEST_CASE("net_a (conv, BN, ReLU, max pool, strided conv with bias, 1x1 conv, flatten, linear) matches PyTorch") {
    check_against_torch<net_a>("net_a.npz");
}

TEST_CASE("net_b (unpadded conv, avg pool, BN, global average pool, linear) matches PyTorch") {
    check_against_torch<net_b>("net_b.npz");
}

// The model families at small widths (tests/golden/make_golden.py builds the same networks).
using in16 = sgp::input<3, 16, 16>;

TEST_CASE("ResNet-20 (CIFAR, option A shortcuts, width 4) matches PyTorch") {
    check_against_torch<sgp::models::resnet20<in16, 10, 4>>("resnet20.npz");
}
TEST_CASE("ResNet-56 (CIFAR, option A shortcuts, width 2) matches PyTorch") {
    check_against_torch<sgp::models::resnet56<in16, 10, 2>>("resnet56.npz");
}
TEST_CASE("ResNet-18 (CIFAR variant, projection shortcuts, width 4) matches PyTorch") {
    check_against_torch<sgp::models::resnet18<in16, 10, 4>>("resnet18.npz");
}
TEST_CASE("a ResNet-8 with projection shortcuts on the CIFAR layout matches PyTorch") {
    check_against_torch<sgp::models::resnet<in16, 10, 'B', 4, 1, 1, 1>>("resnet8b.npz");
}
TEST_CASE("MobileNetV1 (depthwise 3x3 + pointwise 1x1, channels / 8) matches PyTorch") {
    check_against_torch<sgp::models::mobilenet_v1<in16, 10, 8>>("mobilenet_v1.npz");
}
TEST_CASE("MobileNetV2 (inverted residuals, ReLU6, channels / 8) matches PyTorch") {
    // The reference runs its classifier's dropout as the identity: p = 0 here.
    check_against_torch<sgp::models::mobilenet_v2<in16, 10, 8, 0.f>>("mobilenet_v2.npz");
}
