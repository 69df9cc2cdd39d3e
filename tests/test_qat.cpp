// Quantization-aware fine-tuning (quant/qat.hpp): its backward pass is the gradient of the
// graph's function (checked against finite differences of the float graph, every op type),
// and fine-tuning brings the DPU-exact int8 output closer to float without moving a fix point.
#include <doctest/doctest.h>

#include <cmath>
#include <sgp/core/sequential.hpp>
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
#include <sgp/quant/calibrate.hpp>
#include <sgp/quant/dpu_arithmetic.hpp>
#include <sgp/quant/qat.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sgp/target/int8_target.hpp>

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
        const activation a = activation_of(m.ops[i]);
        std::vector<std::uint8_t> p(acts[i].size());
        for (std::size_t j = 0; j < p.size(); ++j) {
            const float v = acts[i][j];
            p[j] = a == activation::none ? 1 : a == activation::relu ? v > 0 : v > 0 && v < 6;
        }
        tape.value.push_back(acts[i]);
        tape.pass.push_back(std::move(p));
    }
}

// Whether two models hold the same float (or int8) weights in every conv.
bool same_weights(const qmodel& a, const qmodel& b) {
    for (std::size_t i = 0; i < a.ops.size(); ++i)
        if (const auto* c = std::get_if<qconv>(&a.ops[i]))
            if (c->weight != std::get<qconv>(b.ops[i]).weight || c->qweight != std::get<qconv>(b.ops[i]).qweight)
                return false;
    return true;
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
    // MobileNetV2's stride-2 depthwise, and an add that reads the network's input (whose
    // gradient is never formed).
    using strided =
        sgp::sequential<sgp::input<2, 8, 8>, linear_residual<conv3x3<2>, batch_norm>, depthwise3x3<2>, batch_norm,
                        relu6, conv1x1<4>, batch_norm, relu, global_avg_pool, flatten, linear<3, true>>;
    strided st(8);
    auto d = folded(st, 9);
    REQUIRE(d.ops.size() == 6);
    REQUIRE(base_of(d.ops[1]).inputs == std::vector<std::size_t>{1, 0});
    check_backward(d, 4, 1);
}

TEST_CASE("QAT's average pool passes gradients with the DPU's factor N / 2^M, not 1 / k^2") {
    for (std::size_t k : {3, 5, 7, 4}) {
        CAPTURE(k);
        qmodel m;
        m.c = 1, m.h = k, m.w = k;
        qconv c;  // something whose output gets a gradient
        c.cin = c.cout = 1, c.h = c.oh = k, c.w = c.ow = k;
        c.weight = {1.f}, c.bias = {0.f};
        m.add(c);
        qavg_pool p;
        p.c = 1, p.h = p.w = p.k = p.stride = k, p.oh = p.ow = 1;
        m.add(p);
        validate(m, "test");
        qat_tape tape;
        tape.value = {std::vector<float>(k * k, 0.5f), std::vector<float>(k * k, 0.5f), {0.5f}};
        tape.pass = {{}, std::vector<std::uint8_t>(k * k, 1), {1}};
        std::vector<std::vector<float>> grad(3), weights = {c.weight, {}};
        grad[2] = {1.f};
        qat_gradients g(m);
        std::vector<float> ws;
        qat_backward(m, tape, weights, grad, g, ws);
        const auto s = dpu::avg_pool_scale(k, k);
        const float want = static_cast<float>(std::ldexp(static_cast<double>(s.n), -s.m));
        for (float e : grad[1]) CHECK(e == want);
        if (k != 4) CHECK(want != doctest::Approx(1.0 / static_cast<double>(k * k)).epsilon(1e-6));
        CHECK(g.bias[0][0] == doctest::Approx(want * static_cast<float>(k * k)));
    }
}

TEST_CASE("QAT's tape is the DPU's arithmetic: every tensor as the reference computes it, gates where it clips") {
    // The gate of an int8 output is closed exactly where some other raw value would give the
    // same output: where the DPU clipped (derived here from dpu::conv_output / add_output).
    for (auto act : {activation::none, activation::relu, activation::relu6})
        for (int fp : {3, 4, 5})
            for (int q = -128; q <= 127; ++q) {
                bool clipped = false, reached = false;
                for (std::int64_t raw = -400; raw <= 400; ++raw) {
                    const bool hit = dpu::conv_output(raw, 0, 0, 0, act, fp) == q;
                    reached = reached || hit;
                    clipped = clipped || (hit && raw != q);
                }
                CAPTURE(q);
                if (reached) CHECK(sgp::quant::detail::passes(static_cast<std::int8_t>(q), act, fp) == !clipped);
                if (act == activation::relu6) continue;
                bool add_clipped = false, add_reached = false;  // an add: a sum at the output's step
                for (std::int64_t raw = -400; raw <= 400; ++raw) {
                    const bool hit = dpu::add_output(raw << 7, 0, act) == q;
                    add_reached = add_reached || hit;
                    add_clipped = add_clipped || (hit && raw != q);
                }
                if (add_reached) CHECK(sgp::quant::detail::passes(static_cast<std::int8_t>(q), act, 0) == !add_clipped);
            }
    // The values read back from the fast path: the reference's integers at their fix points.
    std::size_t tensors = 0;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        CAPTURE(seed);
        const auto m = seed % 2 ? sgp_test::random_graph(seed) : sgp_test::random_model(seed);
        const auto x = random_vector(m.c * m.h * m.w, 1000 + seed, -3.f, 3.f);
        sgp::target::int8_target t(m);
        std::vector<float> out(m.outputs());
        t.run(x.data(), out.data());
        qat_tape tape;
        std::vector<std::int8_t> bytes;
        record_int8_tape(m, t, tape, bytes);
        REQUIRE(tape.value.size() == m.tensor_count());
        for (std::size_t j = 0; j < tape.value[0].size(); ++j)
            REQUIRE(tape.value[0][j] == dequantize(quantize(x[j], m.fp_in), m.fp_in));
        sgp::target::int8_reference ref(m);
        ref.run(x.data(), out.data(), [&](std::size_t i, const std::vector<std::int8_t>& y, int fp) {
            REQUIRE(tape.value[i + 1].size() == y.size());
            for (std::size_t j = 0; j < y.size(); ++j) REQUIRE(tape.value[i + 1][j] == dequantize(y[j], fp));
            ++tensors;
        });
    }
    CHECK(tensors > 200);
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
    CHECK(same_weights(m, again));
    // More threads than shards, more shards than a batch holds, a last batch cut short: the
    // same weights on any thread count; no epoch: nothing moves.
    {
        const qat_options odd{.epochs = 2, .batch = 5, .lr = 0.01, .shards = 7};
        auto a = before, b = before;
        sgp::thread_pool three(3);
        auto odd3 = odd;
        odd3.pool = &three;
        const auto ra = qat_finetune(a, images.data(), teacher.data(), n, odd);
        const auto rb = qat_finetune(b, images.data(), teacher.data(), n, odd3);
        CHECK(ra.loss_after == rb.loss_after);
        CHECK(ra.steps == 2 * ((n + 4) / 5));
        CHECK(same_weights(a, b));
        auto z = before;
        const auto r0 = qat_finetune(z, images.data(), teacher.data(), n, {.epochs = 0});
        CHECK(r0.steps == 0);
        CHECK(r0.loss_after == r0.loss_before);
        CHECK(same_weights(z, before));
    }
    // A step far too large makes every epoch worse: the calibrated weights stay.
    auto wild = before;
    const auto w = qat_finetune(wild, images.data(), teacher.data(), n, {.epochs = 2, .batch = 8, .lr = 5.0});
    CHECK(w.kept_epoch == 0);
    CHECK(w.loss_after == w.loss_before);
    CHECK(same_weights(wild, before));
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
    CHECK_THROWS_WITH_AS(qat_finetune(copy, images.data(), teacher.data(), n, {.beta2 = 1.0}),
                         doctest::Contains("betas"), sgp::error);
}
