// Compiled (not run) for the Zynq UltraScale+ boards' Cortex-A53 by the "neon" CTest case:
// the whole library, the full VGG13-BN forward and backward, with xsimd's NEON batches, and
// the int8 path (its portable int32 lanes: the boards' CPUs have no VNNI).
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_target.hpp>
#include <vector>

static_assert(sgp::simd::width == 4, "aarch64 builds use 128-bit NEON batches of 4 floats");

int main() {
    sgp::trainer<sgp::models::vgg13bn<>> t{sgp::sgd{.lr = 0.01f, .momentum = 0.9f}};
    t.net().reserve(2);
    const int labels[2] = {0, 1};
    if (!(t.train_step(labels, 2, 0.01f).loss > 0)) return 1;
    auto m = sgp::quant::fold(t.net());
    sgp::quant::calibrator cal(m);
    std::vector<float> image(sgp::models::vgg13bn<>::input_shape.size(), 0.5f), out(m.outputs());
    cal.observe(image.data());
    cal.finish();
    sgp::target::int8_target int8(m);
    int8.run(image.data(), out.data());
    return out[0] == out[0] ? 0 : 1;
}
