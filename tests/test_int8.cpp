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
#include "qmodel_fixtures.hpp"

using namespace sgp::quant;

namespace {

using sgp_test::pick;
using sgp_test::random_model;

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
    // shift_bias beyond the DPU's limits (an imported file's fix points, say): refused by both
    // integer paths before any shift by 1,999,999,990 or 110 bits could happen.
    for (int fp_b : {-1999999990, -110, 40, std::numeric_limits<int>::min()}) {
        CAPTURE(fp_b);
        auto bias = m;
        std::get<qconv>(bias.ops[0]).fp_b = fp_b;
        CHECK_THROWS_WITH_AS(sgp::target::int8_target{bias}, doctest::Contains("outside the DPU's limits"), sgp::error);
        CHECK_THROWS_WITH_AS(sgp::target::int8_reference{bias}, doctest::Contains("outside the DPU's limits"),
                             sgp::error);
    }
    CHECK_THROWS_WITH_AS(sgp::target::int8_reference{cut}, doctest::Contains("shift_cut"), sgp::error);
    auto wrong = m;
    std::get<qconv>(wrong.ops[0]).cin += 1;
    CHECK_THROWS_WITH_AS(sgp::target::int8_target{wrong}, doctest::Contains("its input is"), sgp::error);
    CHECK_THROWS_WITH_AS(sgp::target::int8_target{qmodel{}}, doctest::Contains("no operations"), sgp::error);
}
