// The int8 model as a graph: residual adds, depthwise convolutions, ReLU6, average pools and
// concats folded from real networks; the DPU's arithmetic for each op against its definition
// in real numbers (VART cpu-runner's rules, quant/dpu_arithmetic.hpp); the calibrator's
// fix-point rules; the fast path against the reference, bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <sgp/analysis/dpu_placement.hpp>
#include <sgp/layers/avg_pool.hpp>
#include <sgp/layers/batch_norm.hpp>
#include <sgp/layers/concat.hpp>
#include <sgp/layers/conv2d.hpp>
#include <sgp/layers/depthwise_conv2d.hpp>
#include <sgp/layers/flatten.hpp>
#include <sgp/layers/global_avg_pool.hpp>
#include <sgp/layers/linear.hpp>
#include <sgp/layers/relu.hpp>
#include <sgp/layers/relu6.hpp>
#include <sgp/layers/residual.hpp>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/quant/dpu_arithmetic.hpp>
#include <sgp/quant/fix_point_search.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sgp/target/int8_target.hpp>
#include <sstream>

#include "helpers.hpp"
#include "qmodel_fixtures.hpp"

using namespace sgp::quant;
using sgp_test::random_vector;

namespace {

template <class Net>
void perturb(Net& net, std::uint64_t seed) {
    sgp::rng r(seed);
    sgp_test::perturb(net, r);
}

template <class Op>
std::size_t count(const qmodel& m) {
    std::size_t n = 0;
    for (const auto& op : m.ops) n += std::holds_alternative<Op>(op);
    return n;
}

// The float network (evaluation) against the folded graph in float, image by image (one
// input channel: the network's [C][N][H][W] batch is then N images one after another).
template <class Net>
void check_float_graph(Net& net, const qmodel& m, std::size_t n, double eps) {
    const std::size_t len = Net::input_shape.size();
    const auto x = random_vector(n * len, 21);
    net.reserve(n);
    std::copy(x.begin(), x.end(), net.input_buffer());
    sgp::run_context cx;
    const float* y = net.forward(n, cx);
    std::vector<std::vector<float>> acts;
    for (std::size_t i = 0; i < n; ++i) {
        float_forward(m, x.data() + i * len, acts);
        const auto& out = acts.back();
        REQUIRE(out.size() == m.outputs());
        for (std::size_t k = 0; k < out.size(); ++k) CHECK(out[k] == doctest::Approx(y[k * n + i]).epsilon(eps));
    }
}

using namespace sgp::layers;
// Concat branches, a projection shortcut, an average pool, depthwise with ReLU6: every fold path.
using branchy = sgp::sequential<
    sgp::input<1, 12, 12>, conv3x3<6>, batch_norm, relu,
    concat<chain<conv1x1<4>, batch_norm, relu>, chain<depthwise3x3<1>, batch_norm, relu6, conv1x1<3>>>,
    residual<conv3x3<7>, batch_norm, relu, conv3x3<7>, batch_norm, shortcut<conv2d<7, 1, 1, 0>, batch_norm>>,
    avg_pool<3, 3>, conv3x3<5>, batch_norm, relu6, global_avg_pool, flatten, linear<4, true>>;

}  // namespace

TEST_CASE("fold: ResNet-20, MobileNetV2 and a concat network become graphs equal to the network in float") {
    SUBCASE("ResNet-20 (option A shortcuts: fixed strided 1x1 convolutions)") {
        sgp::models::resnet20<sgp::input<1, 32, 32>, 10, 4> net(3);
        perturb(net, 4);
        const auto m = fold(net);
        validate(m, "test");
        CHECK(count<qconv>(m) == 1 + 18 + 2 + 1);  // stem, 9 blocks x 2, 2 shortcuts, linear
        CHECK(count<qadd>(m) == 9);
        CHECK(count<qavg_pool>(m) == 1);
        for (const auto& op : m.ops)
            if (const auto* a = std::get_if<qadd>(&op)) {
                CHECK(a->act == activation::relu);  // the block's ReLU fused into its add
                CHECK(a->inputs.size() == 2);
            }
        check_float_graph(net, m, 3, 1e-4);
    }
    SUBCASE("MobileNetV2 (depthwise, ReLU6, linear bottlenecks)") {
        sgp::models::mobilenet_v2<sgp::input<1, 32, 32>, 10, 8> net(5);
        perturb(net, 6);
        const auto m = fold(net);
        validate(m, "test");
        std::size_t depthwise = 0, relu6 = 0;
        for (const auto& op : m.ops)
            if (const auto* c = std::get_if<qconv>(&op)) {
                depthwise += c->depthwise();
                relu6 += c->act == activation::relu6;
            }
        CHECK(depthwise == 17);
        CHECK(count<qadd>(m) == 10);  // the blocks whose stride and channels keep the shape
        for (const auto& op : m.ops)
            if (const auto* a = std::get_if<qadd>(&op)) CHECK(a->act == activation::none);  // linear bottlenecks
        CHECK(relu6 == 1 + 16 + 17 + 1);  // stem, expansions, depthwise, last 1x1
        check_float_graph(net, m, 2, 1e-4);
    }
    SUBCASE("concat, projection shortcut, average pool") {
        branchy net(7);
        perturb(net, 8);
        const auto m = fold(net);
        validate(m, "test");
        REQUIRE(count<qconcat>(m) == 1);
        for (const auto& op : m.ops)
            if (const auto* k = std::get_if<qconcat>(&op)) {
                CHECK(k->channels == std::vector<std::size_t>{4, 3});
                CHECK(k->inputs.size() == 2);
            }
        CHECK(count<qavg_pool>(m) == 2);
        check_float_graph(net, m, 3, 1e-4);
    }
    SUBCASE("a batch norm at a branch point cannot fold into the conv before it") {
        sgp::sequential<sgp::input<1, 6, 6>, conv3x3<3>, residual<batch_norm, relu, conv3x3<3>>, flatten, linear<2>>
            net(9);
        CHECK_THROWS_WITH_AS(fold(net), doctest::Contains("whose output it alone reads"), sgp::error);
    }
}

TEST_CASE("the DPU's average pool factors: the hardware's table and its search") {
    // pool-fix's special cases (VART cpu-runner, get_avgpool_dpu_factors).
    const std::vector<std::tuple<std::size_t, std::int64_t, int>> want{
        {3, 7, 6}, {5, 10, 8}, {6, 7, 8},    {7, 21, 10},  {14, 21, 12}, {1, 1, 0},    {2, 1, 2},    {4, 1, 4},
        {8, 1, 6}, {16, 1, 8}, {9, 101, 13}, {10, 41, 12}, {11, 17, 11}, {12, 57, 13}, {13, 97, 14}, {15, 73, 14}};
    for (const auto& [k, n, m] : want) {
        CAPTURE(k);
        const auto s = dpu::avg_pool_scale(k, k);
        CHECK(s.n == n);
        CHECK(s.m == m);
    }
    // Non-square windows take the search (the sizes the tools' reports list).
    CHECK(dpu::avg_pool_scale(1, 3).n == 85);
    CHECK(dpu::avg_pool_scale(1, 3).m == 8);
    CHECK(dpu::avg_pool_scale(3, 5).n == 17);
    CHECK(dpu::avg_pool_scale(3, 5).m == 8);
    // Every factor is within 1 % of 1 / area for the windows a CNN uses.
    for (std::size_t k = 1; k <= 32; ++k) {
        const auto s = dpu::avg_pool_scale(k, k);
        CHECK(std::abs(static_cast<double>(s.n) / std::ldexp(1.0, s.m) * static_cast<double>(k * k) - 1.0) < 0.03);
    }
    // Rounded once: a 3x3 window of 5s: 45 * 7 / 64 = 4.92 -> 5; of -1s: -63/64 -> -1.
    CHECK(dpu::avg_pool_output(45, dpu::avg_pool_scale(3, 3)) == 5);
    CHECK(dpu::avg_pool_output(-9, dpu::avg_pool_scale(3, 3)) == -1);
    CHECK(dpu::avg_pool_output(-32, {1, 6}) == 0);  // -0.5 rounds up (DPU_ROUND)
}

TEST_CASE("eltwise add and ReLU6 as the DPU's reference computes them in doubles") {
    // eltwise-fix: tmp = sum floor(q 2^(7 - shift_read)); tmp /= 2^shift_write; tmp /= 2^7;
    // ReLU; round_normal(DPU_ROUND) into [-128, 127].
    sgp::rng r(31);
    std::size_t checked = 0;
    for (int fa = -4; fa <= 16; fa += 2)
        for (int gap = 0; gap <= 15; gap += 3)
            for (int out = -15; out <= 15; out += 5) {
                const int fb = fa + gap, fo = std::min(fa, fb) + out;
                const auto sh = dpu::add_shifts({fa, fb}, fo);
                for (int k = 0; k < 40; ++k) {
                    const auto qa = static_cast<std::int8_t>(sgp_test::pick(r, -128, 127));
                    const auto qb = static_cast<std::int8_t>(sgp_test::pick(r, -128, 127));
                    for (auto act : {activation::none, activation::relu}) {
                        double tmp = std::floor(qa * std::pow(2.0, 7 - sh.read[0])) +
                                     std::floor(qb * std::pow(2.0, 7 - sh.read[1]));
                        tmp /= std::pow(2.0, sh.write);
                        tmp /= 128.0;
                        if (act == activation::relu && tmp < 0) tmp = 0;
                        const double want = std::clamp(std::floor(tmp + 0.5), -128.0, 127.0);
                        const auto got = dpu::add_output(dpu::add_term(qa, sh.read[0]) + dpu::add_term(qb, sh.read[1]),
                                                         sh.write, act);
                        CHECK(got == static_cast<int>(want));
                        ++checked;
                    }
                }
            }
    CHECK(checked > 10000);
    // ReLU6 fused into a conv clamps at 96 when the output's fix point is at most 4 (6.0 at 4).
    CHECK(dpu::conv_output(200, 0, 0, 0, activation::relu6, 4) == 96);
    CHECK(dpu::conv_output(200, 0, 0, 0, activation::relu6, 3) == 96);
    CHECK(dpu::conv_output(200, 0, 0, 0, activation::relu6, 5) == 127);
    CHECK(dpu::conv_output(-5, 0, 0, 0, activation::relu6, 4) == 0);
    CHECK(dpu::conv_output(95, 0, 0, 0, activation::relu6, 4) == 95);
}

namespace {

// The DPU's arithmetic on real numbers: each tensor a multiple of its step 2^-fp, sums exact
// in double, one DPU_ROUND per op; an add reads each input floored to 2^-(fp_min + 7).
std::vector<std::int8_t> definition(const qmodel& m, const float* x) {
    std::vector<std::vector<double>> a(m.tensor_count());
    std::vector<std::int8_t> q;
    a[0].resize(m.c * m.h * m.w);
    for (std::size_t i = 0; i < a[0].size(); ++i) a[0][i] = fix(x[i], m.fp_in);
    auto store = [&](double real, int fp, activation act) {  // -> q, the real value written
        double v = std::floor(std::ldexp(real, fp) + 0.5);
        if (act != activation::none) v = std::max(v, 0.0);
        if (act == activation::relu6 && fp <= 4) v = std::min(v, 96.0);
        return static_cast<std::int8_t>(std::clamp(v, -128.0, 127.0));
    };
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        const auto& in = base_of(m.ops[i]).inputs;
        const auto d = out_of(m.ops[i]);
        const int fp = base_of(m.ops[i]).fp_out;
        q.assign(d.size(), 0);
        std::visit(
            overloaded{
                [&](const qconv& c) {
                    const auto& src = a[in[0]];
                    const std::size_t taps = c.taps(), gin = c.cin / c.groups, gout = c.cout / c.groups;
                    for (std::size_t o = 0; o < c.cout; ++o)
                        for (std::size_t oy = 0; oy < c.oh; ++oy)
                            for (std::size_t ox = 0; ox < c.ow; ++ox) {
                                double s = dequantize(c.qbias[o], c.fp_b);
                                for (std::size_t ci = 0; ci < gin; ++ci)
                                    for (std::size_t ky = 0; ky < c.k; ++ky)
                                        for (std::size_t kx = 0; kx < c.k; ++kx) {
                                            const auto iy = static_cast<std::ptrdiff_t>(oy * c.stride + ky) -
                                                            static_cast<std::ptrdiff_t>(c.pad);
                                            const auto ix = static_cast<std::ptrdiff_t>(ox * c.stride + kx) -
                                                            static_cast<std::ptrdiff_t>(c.pad);
                                            if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(c.h) ||
                                                ix >= static_cast<std::ptrdiff_t>(c.w))
                                                continue;
                                            s +=
                                                static_cast<double>(dequantize(
                                                    c.qweight[o * taps + (ci * c.k + ky) * c.k + kx], c.fp_w)) *
                                                src[((o / gout * gin + ci) * c.h + static_cast<std::size_t>(iy)) * c.w +
                                                    static_cast<std::size_t>(ix)];
                                        }
                                q[(o * c.oh + oy) * c.ow + ox] = store(s, fp, c.act);
                            }
                },
                [&](const qmax_pool& p) {
                    for (std::size_t ch = 0; ch < p.c; ++ch)
                        for (std::size_t oy = 0; oy < p.oh; ++oy)
                            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                                double v = -1e300;
                                for (std::size_t ky = 0; ky < p.k; ++ky)
                                    for (std::size_t kx = 0; kx < p.k; ++kx)
                                        v = std::max(
                                            v, a[in[0]][(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx]);
                                q[(ch * p.oh + oy) * p.ow + ox] = store(v, fp, activation::none);
                            }
                },
                [&](const qavg_pool& p) {
                    const auto s = dpu::avg_pool_scale(p.k, p.k);
                    for (std::size_t ch = 0; ch < p.c; ++ch)
                        for (std::size_t oy = 0; oy < p.oh; ++oy)
                            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                                double sum = 0;
                                for (std::size_t ky = 0; ky < p.k; ++ky)
                                    for (std::size_t kx = 0; kx < p.k; ++kx)
                                        sum += a[in[0]][(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx];
                                q[(ch * p.oh + oy) * p.ow + ox] =
                                    store(sum * static_cast<double>(s.n) / std::ldexp(1.0, s.m), fp, activation::none);
                            }
                },
                [&](const qadd& e) {
                    int lo = 99;
                    for (auto t : in) lo = std::min(lo, m.fix_point(t));
                    for (std::size_t j = 0; j < q.size(); ++j) {
                        double s = 0;
                        for (auto t : in) s += std::ldexp(std::floor(std::ldexp(a[t][j], lo + 7)), -(lo + 7));
                        q[j] = store(s, fp, e.act);
                    }
                },
                [&](const qconcat&) {
                    std::size_t at = 0;
                    for (auto t : in)
                        for (double v : a[t]) q[at++] = store(v, fp, activation::none);
                }},
            m.ops[i]);
        a[i + 1].resize(q.size());
        for (std::size_t j = 0; j < q.size(); ++j) a[i + 1][j] = dequantize(q[j], fp);
    }
    return q;
}

}  // namespace

TEST_CASE("int8 graphs: the reference equals the DPU's arithmetic in real numbers, the fast path the reference") {
    std::size_t models = 0, images = 0, kinds_seen[5] = {};
    for (std::uint64_t seed = 1; seed <= 150; ++seed) {
        CAPTURE(seed);
        const auto m = sgp_test::random_graph(seed);
        validate_calibrated(m, "test");
        for (const auto& op : m.ops) ++kinds_seen[op.index()];
        sgp::target::int8_reference ref(m);
        sgp::target::int8_target fast(m);
        std::vector<float> a(m.outputs()), b(m.outputs());
        for (std::uint64_t s = 0; s < 4; ++s) {
            auto x = random_vector(m.c * m.h * m.w, 1000 * seed + s);
            if (s % 2)
                for (auto& v : x) v *= 16.f;  // beyond every range: saturation everywhere
            ref.run(x.data(), a.data());
            fast.run(x.data(), b.data());
            REQUIRE(ref.last_output() == definition(m, x.data()));
            REQUIRE(fast.last_output() == ref.last_output());
            CHECK(a == b);
            ++images;
        }
        ++models;
    }
    CHECK(models == 150);
    CHECK(images == 600);
    for (auto n : kinds_seen) CHECK(n > 20);  // every op type, many times
    MESSAGE("fast int8 lanes: " << std::string(sgp::target::int8_target::lanes_name()));
}

TEST_CASE("calibration keeps the DPU's fix-point rules for adds, concats and pools, and records each move") {
    sgp::rng r(41);
    qmodel m;
    m.c = 2, m.h = m.w = 6, m.fp_in = 5;
    const std::size_t a = sgp_test::add_conv(m, 0, 3, 3, 1, 1, activation::relu, false, r);
    const std::size_t b = sgp_test::add_conv(m, 0, 3, 1, 1, 0, activation::none, false, r);
    base_of(m.ops[a - 1]).fp_out = 2;   // inputs 20 apart: the finer one must come down to 17
    base_of(m.ops[b - 1]).fp_out = 22;  // (and its conv's shift_cut stays within 0..16)
    std::get<qconv>(m.ops[b - 1]).fp_w = 17;
    std::get<qconv>(m.ops[b - 1]).fp_b = 22;
    qadd add;
    add.c = 3, add.h = add.w = 6;
    add.fp_out = 30;  // 28 finer than the inputs' minimum: comes down to 17
    const std::size_t s = m.add(add, {a, b});
    qconcat cat;
    cat.channels = {3, 3};
    cat.h = cat.w = 6;
    cat.fp_out = 9;
    const std::size_t c = m.add(cat, {s, a});
    qmax_pool pool;
    pool.c = 6, pool.h = pool.w = 6, pool.k = 2, pool.stride = 2, pool.oh = pool.ow = 3;
    pool.fp_out = 12;
    m.add(pool, {c});
    CHECK_THROWS_WITH_AS(validate_calibrated(m, "test"), doctest::Contains("eltwise rule"), sgp::error);
    enforce_fix_rules(m);
    validate_calibrated(m, "test");
    CHECK(m.fix_point(b) == 17);
    CHECK(m.fix_point(s) == 2);  // then the concat brought it to its minimum, 2
    CHECK(m.fix_point(c) == 2);
    CHECK(m.fix_point(m.output_tensor()) == 2);
    CHECK(m.adjustments.size() >= 4);
    for (const auto& adj : m.adjustments) {
        CHECK(adj.to < adj.from);  // only ever coarser
        CHECK_FALSE(adj.reason.empty());
    }
    // On folded networks: the rules hold after calibration, and int8 stays close to float.
    sgp::models::resnet20<sgp::input<1, 16, 16>, 10, 4> net(3);
    perturb(net, 5);
    auto q = fold(net);
    calibrator cal(q);
    for (std::uint64_t k = 0; k < 8; ++k) cal.observe(random_vector(256, 300 + k).data());
    cal.finish();
    validate_calibrated(q, "test");
    sgp::target::int8_target fast(q);
    std::vector<std::vector<float>> acts;
    std::vector<float> out(q.outputs());
    double err = 0, ref = 0;
    for (std::uint64_t k = 0; k < 8; ++k) {
        const auto x = random_vector(256, 400 + k);
        float_forward(q, x.data(), acts);
        fast.run(x.data(), out.data());
        for (std::size_t j = 0; j < out.size(); ++j)
            err += std::abs(out[j] - acts.back()[j]), ref += std::abs(acts.back()[j]);
    }
    CHECK(err < 0.1 * ref);  // 8-bit activations through 22 convs and 9 adds
}

TEST_CASE("placement before export: which ops a DPUCZDX8G runs, and why the others fall back to the CPU") {
    sgp::models::resnet20<sgp::input<1, 32, 32>, 10, 4> resnet(3);
    const auto p = sgp::analysis::place(sgp_test::calibrated_fold(resnet, 1));
    CHECK(p.cpu_ops() == 0);
    CHECK(p.dpu_subgraphs() == 1);
    // Limits: a 17x17 kernel (the conv engine's 1-16), a stride of 9 (1-8), padding beyond the
    // kernel; a depthwise conv padded by 16 (the ALU's 0-15 on the left and top).
    sgp::rng r(5);
    qmodel m;
    m.c = 3, m.h = m.w = 40, m.fp_in = 4;
    std::size_t t = sgp_test::add_conv(m, 0, 8, 3, 1, 1, activation::relu, false, r);
    t = sgp_test::add_conv(m, t, 8, 17, 1, 8, activation::none, false, r);
    t = sgp_test::add_conv(m, t, 8, 3, 9, 1, activation::none, false, r);
    t = sgp_test::add_conv(m, t, 8, 1, 1, 0, activation::none, false, r);
    sgp_test::add_conv(m, t, 0, 33, 1, 16, activation::relu6, true, r);
    enforce_fix_rules(m);
    const auto q = sgp::analysis::place(m);
    REQUIRE(q.ops.size() == 5);
    CHECK(q.ops[0].on_dpu);
    CHECK_FALSE(q.ops[1].on_dpu);
    CHECK(q.ops[1].why.find("kernel 17x17 outside the conv engine's 1-16") != std::string::npos);
    CHECK_FALSE(q.ops[2].on_dpu);
    CHECK(q.ops[2].why.find("stride 9x9") != std::string::npos);
    CHECK(q.ops[3].on_dpu);
    CHECK_FALSE(q.ops[4].on_dpu);
    CHECK(q.ops[4].why.find("pad 16 > the ALU's 15") != std::string::npos);
    CHECK(q.cpu_ops() == 3);
    CHECK(q.dpu_subgraphs() == 2);
    std::ostringstream out;
    sgp::analysis::print_placement(q, out);
    CHECK(out.str().find("2 of 5 ops on the DPU, 2 DPU subgraphs") != std::string::npos);
}

TEST_CASE("fix-point search: moves keep the DPU's rules, are recorded, and lower the loss measured independently") {
    sgp::models::resnet20<sgp::input<1, 16, 16>, 10, 4> net(7);
    perturb(net, 9);
    auto m = fold(net);
    calibrator cal(m, calibration::max_abs);
    std::vector<float> images;
    for (std::uint64_t k = 0; k < 12; ++k) {
        const auto x = random_vector(256, 500 + k);
        cal.observe(x.data());
        images.insert(images.end(), x.begin(), x.end());
    }
    cal.finish();
    // Spoil one tensor: its fix point 3 steps coarser than calibration chose (a loss the search
    // must win back), keeping every rule.
    base_of(m.ops[0]).fp_out -= 3;
    REQUIRE(fix_rule_violation(m, 0).empty());
    for (std::size_t i = 0; i < m.ops.size(); ++i) REQUIRE(fix_rule_violation(m, i).empty());
    validate_calibrated(m, "test");
    const auto before = m;
    // The mean KL(float || int8) over the images, computed here with the scalar reference.
    auto kl = [&](const qmodel& q) {
        sgp::target::int8_reference ref(q);
        std::vector<std::vector<float>> acts;
        std::vector<float> out(q.outputs());
        double sum = 0;
        for (std::size_t i = 0; i < 12; ++i) {
            const float* x = images.data() + i * 256;
            float_forward(q, x, acts);
            ref.run(x, out.data());
            auto soft = [](const std::vector<float>& z) {
                std::vector<double> p(z.size());
                double hi = *std::max_element(z.begin(), z.end()), s = 0;
                for (std::size_t j = 0; j < z.size(); ++j) s += p[j] = std::exp(double{z[j]} - hi);
                for (auto& v : p) v /= s;
                return p;
            };
            const auto f = soft(acts.back()), p = soft(out);
            for (std::size_t j = 0; j < f.size(); ++j) sum += f[j] * (std::log(f[j]) - std::log(p[j]));
        }
        return sum / 12;
    };
    const auto r = search_fix_points(m, images.data(), 12);
    CHECK(r.loss_before == doctest::Approx(kl(before)).epsilon(1e-9));
    CHECK(r.loss_after == doctest::Approx(kl(m)).epsilon(1e-9));
    CHECK(r.loss_after < 0.5 * r.loss_before);
    CHECK(r.moves >= 1);
    CHECK(r.evaluations > 2 * r.moves);
    validate_calibrated(m, "test");
    // Every kept move is recorded as one step with its reason, and the losses recorded form a
    // strictly decreasing chain from the loss before to the loss after (the search may move the
    // spoiled tensor either way: with random weights a coarser input to the residual blocks can
    // be the better one).
    std::size_t recorded = 0;
    double last = r.loss_before;
    for (std::size_t j = before.adjustments.size(); j < m.adjustments.size(); ++j) {
        const auto& a = m.adjustments[j];
        CHECK(std::abs(a.to - a.from) == 1);
        REQUIRE(a.reason.starts_with("fix-point search: mean KL to float "));
        const auto arrow = a.reason.find(" -> ");
        REQUIRE(arrow != std::string::npos);
        const double from = std::stod(a.reason.substr(35, arrow - 35)), to = std::stod(a.reason.substr(arrow + 4));
        CHECK(from == doctest::Approx(last).epsilon(1e-5));
        CHECK(to < from);
        last = to;
        ++recorded;
    }
    CHECK(last == doctest::Approx(r.loss_after).epsilon(1e-5));
    CHECK(recorded == r.moves);
    // The int8 weights are those of the fix points kept.
    for (const auto& op : m.ops)
        if (const auto* c = std::get_if<qconv>(&op))
            for (std::size_t j = 0; j < c->weight.size(); ++j)
                REQUIRE(c->qweight[j] == quantize(c->weight[j], c->fp_w));
    // A graph with pools and concats: tied tensors move together, and the rules still hold.
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
        auto g = sgp_test::random_graph(seed);
        std::vector<float> xs;
        for (std::uint64_t k = 0; k < 4; ++k) {
            const auto x = random_vector(g.c * g.h * g.w, 900 + k);
            xs.insert(xs.end(), x.begin(), x.end());
        }
        const auto s = search_fix_points(g, xs.data(), 4, {.sweeps = 2});
        CHECK(s.loss_after <= s.loss_before);
        validate_calibrated(g, "test");
    }
}
