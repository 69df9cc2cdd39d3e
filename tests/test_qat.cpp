// Quantization-aware fine-tuning (quant/qat.hpp): its backward pass is the gradient of the
// graph's function (checked against finite differences of the float graph, every op type),
// and fine-tuning brings the DPU-exact int8 output closer to float without moving a fix point.
#include <doctest/doctest.h>

#include <cmath>
#include <sgp/layers/avg_pool.hpp>
#include <sgp/layers/batch_norm.hpp>
#include <sgp/layers/concat.hpp>
#include <sgp/layers/conv2d.hpp>
#include <sgp/layers/depthwise_conv2d.hpp>
#include <sgp/layers/flatten.hpp>
#include <sgp/layers/global_avg_pool.hpp>
#include <sgp/layers/linear.hpp>
#include <sgp/layers/max_pool.hpp>
#include <sgp/layers/relu.hpp>
#include <sgp/layers/relu6.hpp>
#include <sgp/layers/residual.hpp>
#include <sgp/models/mobilenet.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/quant/qat.hpp>
#include <sgp/target/int8_reference.hpp>

#include "helpers.hpp"
#include "qmodel_fixtures.hpp"

using namespace sgp::quant;
using sgp_test::random_vector;

namespace {

using namespace sgp::layers;
// Every op the backward handles: conv (3x3, 1x1, strided, with ReLU, ReLU6 or none), a
// depthwise conv, a concat, a residual add with a projection, max and average pools, the
// global average pool and a linear layer. Pools of power-of-two areas, where the DPU's
// average factor is exactly the mean that the float graph computes.
using all_ops = sgp::sequential<
    sgp::input<1, 8, 8>, conv3x3<6>, batch_norm, relu,
    concat<chain<conv1x1<4>, batch_norm, relu>, chain<depthwise3x3<1>, batch_norm, relu6, conv1x1<3>>>,
    residual<conv3x3<7>, batch_norm, relu, conv3x3<7>, batch_norm, shortcut<conv2d<7, 1, 1, 0>, batch_norm>>,
    max_pool<2, 2>, avg_pool<2, 2>, conv2d<5, 3, 2, 1>, batch_norm, relu6, global_avg_pool, flatten, linear<4, true>>;

template <class Net>
qmodel folded(Net& net, std::uint64_t seed) {
    sgp::rng r(seed);
    sgp_test::perturb(net, r);
    return fold(net);
}

// The float graph's tape: values from float_forward, gradients gated where its activations clip.
void float_tape(const qmodel& m, const float* x, qat_tape& tape) {
    std::vector<std::vector<float>> acts;
    float_forward(m, x, acts);
    tape.value.assign(1, std::vector<float>(x, x + m.c * m.h * m.w));
    tape.pass.assign(1, {});
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        const activation a =
            std::visit(overloaded{[](const qconv& c) { return c.act; }, [](const qadd& e) { return e.act; },
                                  [](const auto&) { return activation::none; }},
                       m.ops[i]);
        std::vector<std::uint8_t> p(acts[i].size());
        for (std::size_t j = 0; j < p.size(); ++j) {
            const float v = acts[i][j];
            p[j] = a == activation::none ? 1 : a == activation::relu ? v > 0 : v > 0 && v < 6;
        }
        tape.value.push_back(acts[i]);
        tape.pass.push_back(std::move(p));
    }
}

double kl(const std::vector<double>& f, const std::vector<float>& z) {
    std::vector<double> p(z.size());
    double hi = *std::max_element(z.begin(), z.end()), s = 0;
    for (std::size_t j = 0; j < z.size(); ++j) s += p[j] = std::exp(double{z[j]} - hi);
    double sum = 0;
    for (std::size_t j = 0; j < z.size(); ++j) sum += f[j] * (std::log(f[j]) - std::log(p[j] / s));
    return sum;
}

// Central differences of the float graph's loss against qat_backward on the float tape.
void check_backward(qmodel& m, std::size_t want_convs, std::size_t want_depthwise) {
    const std::size_t in = m.c * m.h * m.w, k = m.outputs();
    const std::size_t images = 3;
    std::vector<float> xs;
    std::vector<std::vector<double>> teacher;
    for (std::size_t i = 0; i < images; ++i) {
        const auto x = random_vector(in, 40 + i, -2.f, 2.f);
        xs.insert(xs.end(), x.begin(), x.end());
        const auto t = random_vector(k, 70 + i, 0.1f, 1.f);
        std::vector<double> f(t.begin(), t.end());
        double s = 0;
        for (double v : f) s += v;
        for (auto& v : f) v /= s;
        teacher.push_back(f);
    }
    auto loss = [&](const qmodel& q) {
        std::vector<std::vector<float>> acts;
        double sum = 0;
        for (std::size_t i = 0; i < images; ++i) {
            float_forward(q, xs.data() + i * in, acts);
            sum += kl(teacher[i], acts.back());
        }
        return sum;
    };
    // The analytic gradients: the float graph's tape, its own weights.
    qat_gradients g(m);
    std::vector<std::vector<float>> weights(m.ops.size()), grad;
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (const auto* c = std::get_if<qconv>(&m.ops[i])) weights[i] = c->weight;
    std::vector<float> ws;
    qat_tape tape;
    for (std::size_t i = 0; i < images; ++i) {
        float_tape(m, xs.data() + i * in, tape);
        const auto& z = tape.value.back();
        std::vector<double> p(k);
        double hi = *std::max_element(z.begin(), z.end()), s = 0;
        for (std::size_t j = 0; j < k; ++j) s += p[j] = std::exp(double{z[j]} - hi);
        grad.assign(m.tensor_count(), {});
        grad.back().resize(k);
        for (std::size_t j = 0; j < k; ++j) grad.back()[j] = static_cast<float>(p[j] / s - teacher[i][j]);
        qat_backward(m, tape, weights, grad, g, ws);
    }
    // Central differences in float64 sums: every bias, and weights spread over each tensor.
    std::size_t checked = 0, convs = 0, depthwise = 0;
    // A step that crosses a kink (a ReLU or a max pool's choice flipping on one element) is
    // retried 8 times shorter: the gradient is the slope on the side the tape saw.
    std::size_t retried = 0;
    auto compare = [&](float& v, float analytic, const std::string& what) {
        const float keep = v;
        auto numeric = [&](float h) {
            v = keep + h;
            const double up = loss(m);
            v = keep - h;
            const double down = loss(m);
            v = keep;
            return (up - down) / (2.0 * static_cast<double>(h));
        };
        auto close = [&](double n) { return std::abs(n - analytic) <= 2e-3 + 2e-2 * std::abs(n); };
        const float h = std::max(1e-3f, 1e-3f * std::abs(keep));
        double n = numeric(h);
        if (!close(n)) {
            ++retried;
            n = numeric(h / 8);
        }
        CHECK_MESSAGE(close(n), what << ": numeric " << n << ", analytic " << analytic);
        ++checked;
    };
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (auto* c = std::get_if<qconv>(&m.ops[i])) {
            ++convs;
            depthwise += c->depthwise();
            for (std::size_t j = 0; j < c->cout; ++j)
                compare(c->bias[j], g.bias[i][j], "op " + std::to_string(i) + " bias " + std::to_string(j));
            const std::size_t stride = std::max<std::size_t>(1, c->weight.size() / 17);
            for (std::size_t j = 0; j < c->weight.size(); j += stride)
                compare(c->weight[j], g.weight[i][j], "op " + std::to_string(i) + " weight " + std::to_string(j));
        }
    CHECK(convs == want_convs);
    CHECK(depthwise == want_depthwise);
    CHECK(checked > 60);
    CHECK(retried <= 3);
    // The gradients are not all zero (the gates did not close everything).
    double norm = 0;
    for (const auto& v : g.weight)
        for (float e : v) norm += double{e} * e;
    CHECK(norm > 1e-6);
}

}  // namespace

TEST_CASE("QAT's backward pass is the gradient of the graph: finite differences on every op type") {
    all_ops net(3);
    auto m = folded(net, 5);
    REQUIRE(m.ops.size() == 14);
    check_backward(m, 9, 1);
    // A linear layer reading a flattened 3x3 map (a window over the whole map, as in VGG).
    using flat = sgp::sequential<sgp::input<1, 7, 7>, conv3x3<4>, batch_norm, relu, max_pool<2, 2>, flatten,
                                 linear<6, true>, relu, linear<3, true>>;
    flat f(4);
    auto q = folded(f, 6);
    REQUIRE(q.ops.size() == 4);
    check_backward(q, 3, 0);
}

TEST_CASE("QAT lowers the int8 model's distance to float, keeps every fix point, and does not depend on threads") {
    all_ops net(17);
    auto m = folded(net, 19);
    const std::size_t in = m.c * m.h * m.w, k = m.outputs(), n = 48;
    calibrator cal(m, calibration::mse);
    std::vector<float> images, teacher;
    std::vector<std::vector<float>> acts;
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto x = random_vector(in, 300 + i, -2.f, 2.f);
        cal.observe(x.data());
        images.insert(images.end(), x.begin(), x.end());
        float_forward(m, x.data(), acts);
        teacher.insert(teacher.end(), acts.back().begin(), acts.back().end());
    }
    cal.finish();
    const auto before = m;
    // The mean KL(float || int8), measured here with the scalar reference.
    auto distance = [&](const qmodel& q) {
        sgp::target::int8_reference ref(q);
        std::vector<float> out(k);
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
            ref.run(images.data() + i * in, out.data());
            std::vector<double> f(k);
            sgp::quant::detail::softmax(teacher.data() + i * k, k, f.data());
            sum += kl(f, out);
        }
        return sum / static_cast<double>(n);
    };
    const qat_options o{.epochs = 6, .batch = 8, .lr = 0.01};
    const auto r = qat_finetune(m, images.data(), teacher.data(), n, o);
    CHECK(r.loss_before == doctest::Approx(distance(before)).epsilon(1e-9));
    CHECK(r.loss_after == doctest::Approx(distance(m)).epsilon(1e-9));
    CHECK(r.loss_after < 0.7 * r.loss_before);
    CHECK(r.steps == 36);
    REQUIRE(r.epoch_loss.size() == 6);
    // The weights kept are the best epoch's.
    REQUIRE(r.kept_epoch >= 1);
    CHECK(r.loss_after == r.epoch_loss[r.kept_epoch - 1]);
    CHECK(r.loss_after == *std::min_element(r.epoch_loss.begin(), r.epoch_loss.end()));
    validate_calibrated(m, "test");
    // Fix points as they were; int8 tensors those of the tuned weights, which stay in range.
    REQUIRE(m.fp_in == before.fp_in);
    std::size_t moved = 0;
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        CHECK(base_of(m.ops[i]).fp_out == base_of(before.ops[i]).fp_out);
        if (const auto* c = std::get_if<qconv>(&m.ops[i])) {
            const auto& was = std::get<qconv>(before.ops[i]);
            CHECK(c->fp_w == was.fp_w);
            CHECK(c->fp_b == was.fp_b);
            for (std::size_t j = 0; j < c->weight.size(); ++j) {
                REQUIRE(c->qweight[j] == quantize(c->weight[j], c->fp_w));
                REQUIRE(std::abs(c->weight[j]) <= 128 * std::ldexp(1.f, -c->fp_w));
                moved += c->qweight[j] != was.qweight[j];
            }
            for (std::size_t j = 0; j < c->cout; ++j) REQUIRE(c->qbias[j] == quantize(c->bias[j], c->fp_b));
        }
    }
    CHECK(moved > 0);
    CHECK(m.adjustments.size() == before.adjustments.size());
    // Two threads give the same weights, bit for bit.
    auto again = before;
    sgp::thread_pool pool(2);
    auto o2 = o;
    o2.pool = &pool;
    const auto r2 = qat_finetune(again, images.data(), teacher.data(), n, o2);
    CHECK(r2.loss_after == r.loss_after);
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (const auto* c = std::get_if<qconv>(&m.ops[i])) CHECK(c->weight == std::get<qconv>(again.ops[i]).weight);
    // A step far too large makes every epoch worse: the calibrated weights stay.
    auto wild = before;
    const auto w = qat_finetune(wild, images.data(), teacher.data(), n, {.epochs = 2, .batch = 8, .lr = 5.0});
    CHECK(w.kept_epoch == 0);
    CHECK(w.loss_after == w.loss_before);
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (const auto* c = std::get_if<qconv>(&wild.ops[i]))
            CHECK(c->qweight == std::get<qconv>(before.ops[i]).qweight);
    // Bad input is refused with the reason.
    auto bad = teacher;
    bad[3] = std::nanf("");
    auto copy = before;
    CHECK_THROWS_WITH_AS(qat_finetune(copy, images.data(), bad.data(), n, o),
                         doctest::Contains("output for image 0 is not finite"), sgp::error);
    CHECK_THROWS_WITH_AS(qat_finetune(copy, images.data(), teacher.data(), 0, o), doctest::Contains("no image"),
                         sgp::error);
    CHECK_THROWS_WITH_AS(qat_finetune(copy, images.data(), teacher.data(), n, {.lr = -1}),
                         doctest::Contains("learning rate"), sgp::error);
}
