// DPU fixed point: rounding, fix points, the shift limits, folding, and the integer
// inference against the real-valued definition of the DPU's arithmetic.
#include <doctest/doctest.h>

#include <cmath>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_reference.hpp>

#include "helpers.hpp"

using namespace sgp::quant;
using sgp_test::random_vector;

TEST_CASE("DPU_ROUND rounds half up, in reals and in integer shifts") {
    CHECK(dpu_round(2.5) == 3);
    CHECK(dpu_round(-2.5) == -2);
    CHECK(dpu_round(-2.6) == -3);
    CHECK(dpu_round(0.49) == 0);
    sgp::rng r(1);
    for (int i = 0; i < 20000; ++i) {
        const auto t = static_cast<std::int64_t>(r.normal() * 1e6);
        const int s = static_cast<int>(r.next() % 25) - 4;
        CHECK(dpu_shift_round(t, s) == static_cast<std::int64_t>(dpu_round(std::ldexp(static_cast<double>(t), -s))));
    }
    CHECK(dpu_shift_round(-5, 1) == -2);  // -2.5 -> -2
    CHECK(dpu_shift_round(5, 1) == 3);
}

TEST_CASE("quantize saturates, maps NaN to 0, and the max-abs fix point is the finest that fits") {
    CHECK(quantize(1.f, 7) == 127);  // 128 saturates
    CHECK(quantize(-1.f, 7) == -128);
    CHECK(quantize(-1e30f, 0) == -128);
    CHECK(quantize(std::nanf(""), 3) == 0);
    CHECK(quantize(0.75f, 2) == 3);
    CHECK(dequantize(-64, 7) == -0.5f);
    CHECK(max_abs_fix_point(1.0) == 6);     // 1 * 2^7 = 128 would not fit
    CHECK(max_abs_fix_point(0.99) == 7);    // 126.7 rounds to 127
    CHECK(max_abs_fix_point(127.5) == -1);  // 127.5 rounds to 128
    CHECK(max_abs_fix_point(0.0) == 16);
    CHECK(max_abs_fix_point(1e9) == -16);  // clamped to the DPU's range
    // A long tail: the mean-squared-error search clips it for finer steps.
    std::vector<float> v(10000);
    sgp::rng r(2);
    for (auto& x : v) x = 0.05f * r.normal();
    v[0] = 4.f;
    CHECK(mse_fix_point(v) > max_abs_fix_point(4.0));
    CHECK(quantization_error(v, mse_fix_point(v)) < quantization_error(v, max_abs_fix_point(4.0)));
}

TEST_CASE("the DPU's shift limits move fix points, and every move is recorded") {
    qmodel m;
    qconv c;
    c.cin = c.cout = 1;
    c.weight = {0.5f};
    c.bias = {0.f};
    m.add(c);
    auto set = [&](int w, int b, int out) {
        auto& q = std::get<qconv>(m.ops[0]);
        q.fp_w = w, q.fp_b = b, q.fp_out = out;
        m.adjustments.clear();
    };
    auto& q = std::get<qconv>(m.ops[0]);
    set(7, 7, 14);  // shift_cut = 4 + 7 - 14 = -3 < 0: the output fix point comes down to 11
    enforce_limits(m, 0, 4);
    CHECK(q.fp_out == 11);
    REQUIRE(m.adjustments.size() == 1);
    CHECK(m.adjustments[0].tensor == "output");
    set(14, 10, 0);  // shift_cut = 4 + 14 - 0 = 18 > 16: weights coarser by 2
    enforce_limits(m, 0, 4);
    CHECK(q.fp_w == 12);
    CHECK(m.adjustments.at(0).tensor == "weights");
    set(7, -8, 5);  // shift_bias = 4 + 7 + 8 = 19 > 16
    enforce_limits(m, 0, 4);
    CHECK(q.fp_b == -5);
    set(7, 20, 5);  // shift_cut 6, lower limit min(0, 6 - 16) = -10; shift_bias = 11 - 20 = -9 is allowed
    enforce_limits(m, 0, 4);
    CHECK(m.adjustments.empty());
    set(7, 25, 5);  // shift_bias -14 < -10
    enforce_limits(m, 0, 4);
    CHECK(q.fp_b == 21);
    for (int fp_in : {-3, 0, 4, 9})
        for (int w = -4; w <= 18; w += 3)
            for (int b = -6; b <= 24; b += 5)
                for (int out = -4; out <= 20; out += 4) {
                    set(w, b, out);
                    enforce_limits(m, 0, fp_in);
                    const auto s = shifts_of(q, fp_in);
                    CHECK(s.cut >= 0);
                    CHECK(s.cut <= 16);
                    CHECK(s.bias <= 16);
                    CHECK(s.bias >= std::min(0, s.cut - 16));
                }
}

namespace {

using namespace sgp::layers;
using small_net =
    sgp::sequential<sgp::input<2, 8, 8>, conv3x3<6, true>, batch_norm, relu, max_pool<2>, conv3x3<5>, batch_norm, relu,
                    dropout<0.5f>, flatten, linear<7, true>, batch_norm, relu, linear<3, true>>;

// A network with trained-looking statistics: running mean/var and affine parameters moved.
small_net make_net() {
    small_net net(11);
    sgp::rng r(12);
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (!t.value) return;
        for (std::size_t i = 0; i < t.size(); ++i)
            t.value[i] = k.find("running_var") != std::string::npos ? 0.5f + std::abs(r.normal())
                                                                    : t.value[i] + 0.2f * r.normal();
    });
    return net;
}

// The DPU's arithmetic as real numbers: every tensor through fix(), sums exact in double.
std::vector<std::int8_t> definition(const qmodel& m, const float* x) {
    const std::size_t n = m.c * m.h * m.w;
    std::vector<double> a(n);
    for (std::size_t i = 0; i < n; ++i) a[i] = fix(x[i], m.fp_in);
    std::vector<std::int8_t> q;
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        std::vector<double> b;
        if (const auto* c = std::get_if<qconv>(&m.ops[i])) {
            b.assign(c->cout * c->oh * c->ow, 0.0);
            q.assign(b.size(), 0);
            const std::size_t taps = c->cin * c->k * c->k;
            for (std::size_t o = 0; o < c->cout; ++o)
                for (std::size_t oy = 0; oy < c->oh; ++oy)
                    for (std::size_t ox = 0; ox < c->ow; ++ox) {
                        double s = dequantize(c->qbias[o], c->fp_b);
                        for (std::size_t ci = 0; ci < c->cin; ++ci)
                            for (std::size_t ky = 0; ky < c->k; ++ky)
                                for (std::size_t kx = 0; kx < c->k; ++kx) {
                                    const auto iy =
                                        static_cast<std::ptrdiff_t>(oy + ky) - static_cast<std::ptrdiff_t>(c->pad);
                                    const auto ix =
                                        static_cast<std::ptrdiff_t>(ox + kx) - static_cast<std::ptrdiff_t>(c->pad);
                                    if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(c->h) ||
                                        ix >= static_cast<std::ptrdiff_t>(c->w))
                                        continue;
                                    s += static_cast<double>(
                                             dequantize(c->qweight[o * taps + (ci * c->k + ky) * c->k + kx], c->fp_w)) *
                                         a[(ci * c->h + static_cast<std::size_t>(iy)) * c->w +
                                           static_cast<std::size_t>(ix)];
                                }
                        if (c->act == activation::relu) s = std::max(s, 0.0);
                        const std::size_t j = (o * c->oh + oy) * c->ow + ox;
                        q[j] = saturate(static_cast<std::int64_t>(dpu_round(std::ldexp(s, c->fp_out))));
                        b[j] = dequantize(q[j], c->fp_out);
                    }
        } else {
            const auto& p = std::get<qmax_pool>(m.ops[i]);
            b.assign(p.c * p.oh * p.ow, 0.0);
            std::vector<std::int8_t> pq(b.size());
            for (std::size_t ch = 0; ch < p.c; ++ch)
                for (std::size_t oy = 0; oy < p.oh; ++oy)
                    for (std::size_t ox = 0; ox < p.ow; ++ox) {
                        double v = -1e300;
                        for (std::size_t ky = 0; ky < p.k; ++ky)
                            for (std::size_t kx = 0; kx < p.k; ++kx)
                                v = std::max(v, a[(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx]);
                        b[(ch * p.oh + oy) * p.ow + ox] = v;
                        pq[(ch * p.oh + oy) * p.ow + ox] = quantize(static_cast<float>(v), m.fp_input(i));
                    }
            q = pq;
        }
        a = b;
    }
    return q;
}

}  // namespace

TEST_CASE("fold: batch norms folded, ReLUs fused, dropout gone, and the float model equals the network") {
    auto net = make_net();
    const auto m = fold(net);
    REQUIRE(m.ops.size() == 5);  // conv, pool, conv, linear, linear
    CHECK(std::get<qconv>(m.ops[0]).act == activation::relu);
    CHECK(std::get<qconv>(m.ops[2]).act == activation::relu);
    CHECK(std::get<qconv>(m.ops[3]).act == activation::relu);
    CHECK(std::get<qconv>(m.ops[4]).act == activation::none);
    CHECK(std::get<qconv>(m.ops[3]).cin == 5 * 4 * 4);
    const std::size_t n = 3;
    const auto x = random_vector(n * small_net::input_shape.size(), 13);
    net.reserve(n);
    std::copy(x.begin(), x.end(), net.input_buffer());  // 2 channels: convert to NCHW for the qmodel
    sgp::run_context cx;
    const float* y = net.forward(n, cx);
    std::vector<std::vector<float>> acts;
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<float> img(small_net::input_shape.size());
        for (std::size_t c = 0; c < 2; ++c)
            std::copy_n(x.begin() + static_cast<std::ptrdiff_t>((c * n + i) * 64), 64,
                        img.begin() + static_cast<std::ptrdiff_t>(c * 64));
        float_forward(m, img.data(), acts);
        for (std::size_t k = 0; k < 3; ++k) CHECK(acts.back()[k] == doctest::Approx(y[k * n + i]).epsilon(1e-4));
    }
    // Widths changed without update_widths: refused, not folded into a wrong model.
    auto stale = make_net();
    stale.layer<0>().set_out_channels(4);
    CHECK_THROWS_WITH_AS(fold(stale), doctest::Contains("update_widths"), sgp::error);
    // An average pool is its own op (its int8 form: tests/test_qgraph.cpp).
    sgp::sequential<sgp::input<1, 4, 4>, conv3x3<2>, avg_pool<2>, flatten, linear<2>> with_avg;
    CHECK(std::holds_alternative<qavg_pool>(fold(with_avg).ops.at(1)));
    sgp::sequential<sgp::input<1, 4, 4>, batch_norm, flatten, linear<2>> bn_first;
    CHECK_THROWS_WITH_AS(fold(bn_first), doctest::Contains("follows no convolution"), sgp::error);
}

TEST_CASE("int8 inference equals the DPU's arithmetic as real numbers, bit for bit") {
    auto net = make_net();
    for (int variant = 0; variant < 3; ++variant) {
        auto m = fold(net);
        calibrator cal(m, variant == 0 ? calibration::max_abs : calibration::mse);
        for (std::uint64_t s = 0; s < 16; ++s)
            cal.observe(random_vector(small_net::input_shape.size(), 100 + s).data());
        cal.finish();
        if (variant == 2) {
            // Biases finer than the products (negative shift_bias, allowed down to shift_cut - 16).
            for (std::size_t i : {0, 2}) {
                auto& c = std::get<qconv>(m.ops[i]);
                c.fp_b = m.fp_input(i) + c.fp_w + 2;
                REQUIRE(shifts_of(c, m.fp_input(i)).bias == -2);
                REQUIRE(shifts_of(c, m.fp_input(i)).cut <= 14);  // so that -2 is within the limit
                calibrator::quantize_tensors(c);
            }
        }
        sgp::target::int8_reference ref(m);
        std::vector<float> out(m.outputs());
        std::size_t compared = 0;
        for (std::uint64_t s = 0; s < 24; ++s) {
            auto x = random_vector(small_net::input_shape.size(), 200 + s);
            if (s % 3 == 0)
                for (auto& v : x) v *= 8.f;  // beyond the calibrated range: saturation
            ref.run(x.data(), out.data());
            const auto want = definition(m, x.data());
            CHECK(ref.last_output() == want);
            for (std::size_t k = 0; k < out.size(); ++k)
                CHECK(out[k] == dequantize(want[k], m.fix_point(m.output_tensor())));
            ++compared;
        }
        CHECK(compared == 24);
    }
    // Not calibrated: refused.
    const auto raw = fold(net);
    CHECK_THROWS_WITH_AS(sgp::target::int8_reference{raw}, doctest::Contains("not calibrated"), sgp::error);
}
