// runtime<Net, dpu_target> end to end against the VART/XIR STAND-IN of tests/vart_standin (a
// "DPU" computed by int8_target, not Xilinx's runtime): the exported .xmodel is loaded, float
// images are scaled to int8 NHWC with the input tensor's fix point, run in the runner's batches
// and dequantized; the scores equal runtime<Net, int8_target>'s bit for bit. The same call on
// cpu_target gives the float network's scores.
#include <doctest/doctest.h>

#include <fstream>
#include <sgp/export/xmodel_writer.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/dpu_runtime.hpp>
#include <sgp/target/runtime.hpp>

#include "helpers.hpp"

namespace {

using namespace sgp::layers;
using small_net = sgp::sequential<sgp::input<2, 8, 8>, conv3x3<6, true>, batch_norm, relu, max_pool<2>, conv3x3<5>,
                                  batch_norm, relu, flatten, linear<7, true>, relu, linear<3, true>>;

sgp::quant::qmodel calibrated(small_net& net) {
    auto m = sgp::quant::fold(net);
    sgp::quant::calibrator cal(m, sgp::quant::calibration::mse);
    for (std::uint64_t s = 0; s < 16; ++s)
        cal.observe(sgp_test::random_vector(small_net::input_shape.size(), s).data());
    cal.finish();
    return m;
}

}  // namespace

TEST_CASE("dpu_target (VART stand-in) runs the exported model exactly as int8_target, in the runner's batches") {
    small_net net(3);
    const auto m = calibrated(net);
    sgp_test::temp_dir dir("dpu");
    const auto path = dir.file("small.xmodel");
    sgp::xmodel::write(m, path);
    constexpr std::size_t n = 7, K = small_net::output_shape.size();
    const auto x = sgp_test::random_vector(n * small_net::input_shape.size(), 42, -2.f, 2.f);
    sgp::runtime<small_net, sgp::int8_target> host(m);
    std::vector<float> want(n * K);
    host.run(x.data(), want.data(), n);
    for (int batch : {1, 3, 4}) {
        CAPTURE(batch);
        sgp_standin::dpu_batch = batch;
        sgp::runtime<small_net, sgp::dpu_target> dpu(path);
        CHECK(dpu.batch() == static_cast<std::size_t>(batch));
        CHECK(dpu.input_fix_point() == m.fp_in);
        CHECK(dpu.output_fix_point() == m.fix_point(m.output_tensor()));
        std::vector<float> got(n * K, -1.f);
        dpu.run(x.data(), got.data(), n);  // 7 images: a short last batch unless batch is 1
        CHECK(got == want);
        const auto one = dpu(x.data() + 2 * small_net::input_shape.size());
        CHECK(std::equal(one.begin(), one.end(), want.begin() + 2 * K));
    }
    sgp_standin::dpu_batch = 1;

    // The float network through the same call: its scores, image by image.
    sgp::runtime<small_net, sgp::cpu_target> cpu(net);
    std::vector<float> fl(n * K);
    cpu.run(x.data(), fl.data(), n);
    std::vector<std::vector<float>> acts;
    for (std::size_t i = 0; i < n; ++i) {
        sgp::quant::float_forward(m, x.data() + i * small_net::input_shape.size(), acts);
        for (std::size_t k = 0; k < K; ++k) CHECK(fl[i * K + k] == doctest::Approx(acts.back()[k]).epsilon(1e-4));
    }
}

TEST_CASE("dpu_target refuses a missing, corrupt or mismatched model with the file's name") {
    sgp_test::temp_dir dir("dpu-bad");
    using R = sgp::runtime<small_net, sgp::dpu_target>;
    CHECK_THROWS_WITH_AS(R(dir.file("none.xmodel")), doctest::Contains("none.xmodel: file not found"), sgp::error);
    std::ofstream(dir.file("junk.xmodel"), std::ios::binary) << "\x0a\xff\xff\xff\x0f garbage";
    CHECK_THROWS_WITH_AS(R(dir.file("junk.xmodel")), doctest::Contains("junk.xmodel: not a serialized XIR graph"),
                         sgp::error);
    // A model of another network: the shapes do not match the type.
    sgp::sequential<sgp::input<1, 8, 8>, conv3x3<4, true>, relu, flatten, linear<3, true>> other(5);
    auto m = sgp::quant::fold(other);
    sgp::quant::calibrator cal(m);
    cal.observe(sgp_test::random_vector(64, 1).data());
    cal.finish();
    sgp::xmodel::write(m, dir.file("other.xmodel"));
    CHECK_THROWS_WITH_AS(R(dir.file("other.xmodel")), doctest::Contains("the DPU takes 8x8x1"), sgp::error);
    using host_runtime = sgp::runtime<small_net, sgp::int8_target>;
    CHECK_THROWS_WITH_AS(host_runtime{m}, doctest::Contains("the network type has"), sgp::error);
}
