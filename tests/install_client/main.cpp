// A user's program built against the installed sgp: declares a network and trains a step.
#include <sgp/sgp.hpp>

using namespace sgp::layers;
using net = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<4>, batch_norm, relu, max_pool<2>, flatten, linear<2>>;
static_assert(net::parameter_count == 36 + 8 + 64 * 2 + 2);

int main() {
    sgp::trainer<net> t;
    t.net().reserve(2);
    for (std::size_t i = 0; i < 128; ++i) t.net().input_buffer()[i] = static_cast<float>(i % 3);
    const int labels[2] = {0, 1};
    return t.train_step(labels, 2, 0.1f).loss > 0 ? 0 : 1;
}
