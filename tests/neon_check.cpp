// Compiled (not run) for the Zynq UltraScale+ boards' Cortex-A53 by the "neon" CTest case:
// the whole library, the full VGG13-BN forward and backward, with xsimd's NEON batches.
#include <sgp/sgp.hpp>

static_assert(sgp::simd::width == 4, "aarch64 builds use 128-bit NEON batches of 4 floats");

int main() {
    sgp::trainer<sgp::models::vgg13bn<>> t{sgp::sgd{.lr = 0.01f, .momentum = 0.9f}};
    t.net().reserve(2);
    const int labels[2] = {0, 1};
    return t.train_step(labels, 2, 0.01f).loss > 0 ? 0 : 1;
}
