// The fast int8 path (target/int8_target.hpp) against the scalar reference of the DPU's
// arithmetic (target/int8_reference.hpp): the same int8 outputs, bit for bit, for random
// models over many geometries and fix points, random and out-of-range inputs, with every lane
// policy this build has.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sgp/quant/calibrate.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sgp/target/int8_target.hpp>

#include "helpers.hpp"

using namespace sgp::quant;

namespace {

int pick(sgp::rng& r, int lo, int hi) {
    return lo + static_cast<int>(r.next() % static_cast<std::uint64_t>(hi - lo + 1));
}

// Integer weights over the whole int8 range; fix points anywhere the DPU's limits allow,
// including biases finer than the products (negative shift_bias).
void random_tensors(qconv& c, int fp_in, sgp::rng& r) {
    const std::size_t n = c.cout * c.cin * c.k * c.k;
    c.qweight.resize(n);
    c.weight.resize(n);
    for (auto& w : c.qweight) w = static_cast<std::int8_t>(pick(r, -128, 127));
    c.qbias.resize(c.cout);
    c.bias.resize(c.cout);
    for (auto& b : c.qbias) b = static_cast<std::int8_t>(pick(r, -128, 127));
    c.fp_w = pick(r, 3, 9);
    const int cut = pick(r, 0, 16);
    c.fp_out = fp_in + c.fp_w - cut;
    const int sb = pick(r, std::min(0, cut - 16), 16);
    c.fp_b = fp_in + c.fp_w - sb;
    const auto s = shifts_of(c, fp_in);
    REQUIRE(s.cut == cut);
    REQUIRE(s.bias == sb);
}

// conv (k 1/3/5, stride 1/2, pad 0-2) x 1-3, an optional 2x2 pool, then optionally a flatten
// and one or two linear layers (1x1 convolutions of a 1x1 map).
qmodel random_model(std::uint64_t seed) {
    sgp::rng r(seed);
    qmodel m;
    m.c = static_cast<std::size_t>(pick(r, 1, 7));
    m.h = static_cast<std::size_t>(pick(r, 1, 13));
    m.w = static_cast<std::size_t>(pick(r, 1, 13));
    m.fp_in = pick(r, 0, 6);
    std::size_t c = m.c, h = m.h, w = m.w;
    int fp = m.fp_in;
    const int convs = pick(r, 1, 3);
    for (int i = 0; i < convs; ++i) {
        qconv q;
        q.cin = c, q.h = h, q.w = w;
        q.cout = static_cast<std::size_t>(pick(r, 1, 40));
        q.pad = static_cast<std::size_t>(pick(r, 0, 2));
        q.k = std::size_t{1} + 2 * static_cast<std::size_t>(pick(r, 0, 2));
        while (q.k > std::min(h, w) + 2 * q.pad) q.k -= 2;
        q.stride = static_cast<std::size_t>(pick(r, 1, 2));
        q.oh = (h + 2 * q.pad - q.k) / q.stride + 1;
        q.ow = (w + 2 * q.pad - q.k) / q.stride + 1;
        q.relu = r.next() % 3 != 0;
        random_tensors(q, fp, r);
        fp = q.fp_out;
        c = q.cout, h = q.oh, w = q.ow;
        m.ops.emplace_back(std::move(q));
    }
    if (h >= 2 && w >= 2 && r.next() % 2) {
        qmax_pool p;  // 2x2 / 2, or overlapping windows (3x3 / 2, 2x2 / 1)
        p.k = std::min<std::size_t>({h, w, static_cast<std::size_t>(pick(r, 2, 3))});
        p.stride = static_cast<std::size_t>(pick(r, 1, 2));
        p.c = c, p.h = h, p.w = w, p.oh = (h - p.k) / p.stride + 1, p.ow = (w - p.k) / p.stride + 1;
        h = p.oh, w = p.ow;
        m.ops.emplace_back(p);
    }
    if (r.next() % 2) {
        std::size_t features = c * h * w;
        for (int i = pick(r, 1, 2); i > 0; --i) {
            qconv q;
            q.cin = features, q.cout = static_cast<std::size_t>(pick(r, 1, 70));
            q.relu = i > 1;
            random_tensors(q, fp, r);
            fp = q.fp_out;
            features = q.cout;
            m.ops.emplace_back(std::move(q));
        }
    }
    return m;
}

template <class Lanes>
void check_against_reference(const qmodel& m, std::uint64_t seed, int images) {
    sgp::target::int8_reference ref(m);
    sgp::target::basic_int8_target<Lanes> fast(m);
    REQUIRE(fast.outputs() == m.outputs());
    std::vector<float> a(m.outputs()), b(m.outputs());
    for (int i = 0; i < images; ++i) {
        auto x = sgp_test::random_vector(m.c * m.h * m.w, seed + static_cast<std::uint64_t>(i), -2.f, 2.f);
        if (i % 4 == 1)
            for (auto& v : x) v *= 64.f;  // saturating input
        if (i % 4 == 2) {                 // values the quantizer must map exactly as the reference
            x[0] = std::numeric_limits<float>::quiet_NaN();
            x[x.size() / 2] = std::numeric_limits<float>::infinity();
            x.back() = -std::numeric_limits<float>::infinity();
            sgp::rng halves(seed + 7);  // exact halves: the rounding direction decides
            for (std::size_t k = 1; k + 1 < x.size() / 2; ++k)
                x[k] = std::ldexp(static_cast<float>(pick(halves, -300, 300)) + 0.5f, -m.fp_in);
        }
        ref.run(x.data(), a.data());
        fast.run(x.data(), b.data());
        REQUIRE(fast.last_output() == ref.last_output());
        REQUIRE(a == b);
    }
}

}  // namespace

TEST_CASE("the fast int8 path equals the scalar reference bit for bit on random models") {
    INFO("lanes: " << std::string(sgp::target::int8_target::lanes_name()));
    for (std::uint64_t seed = 1; seed <= 150; ++seed) {
        CAPTURE(seed);
        const auto m = random_model(seed);
        check_against_reference<sgp::target::default_int8_lanes>(m, 1000 * seed, 4);
        check_against_reference<sgp::target::portable_lanes>(m, 1000 * seed, 2);
    }
}

TEST_CASE("the fast int8 path refuses models it cannot run exactly, with the reason") {
    auto m = random_model(3);
    auto raw = m;
    std::get<qconv>(raw.ops[0]).qweight.clear();
    CHECK_THROWS_WITH_AS(sgp::target::int8_target{raw}, doctest::Contains("not calibrated"), sgp::error);
    auto cut = m;
    std::get<qconv>(cut.ops[0]).fp_out += 40;  // shift_cut far below 0
    CHECK_THROWS_WITH_AS(sgp::target::int8_target{cut}, doctest::Contains("shift_cut"), sgp::error);
    auto wrong = m;
    std::get<qconv>(wrong.ops[0]).cin += 1;
    CHECK_THROWS_WITH_AS(sgp::target::int8_target{wrong}, doctest::Contains("the op before gives"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::target::int8_target{qmodel{}}, doctest::Contains("no operations"), sgp::error);
}
