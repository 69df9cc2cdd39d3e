// Writes an sgp-trained network's weights, an input batch and sgp's evaluation-mode outputs
// to one .npz, for golden/check_sgp_in_torch.py to load into PyTorch.
#include <iostream>
#include <sgp/sgp.hpp>

using namespace sgp::layers;
// The same layer list as make_golden.py's net_a.
using net_a =
    sgp::sequential<sgp::input<2, 9, 9>, conv2d<4, 3, 1, 1>, batch_norm, relu, max_pool<2>, conv2d<6, 3, 2, 1, true>,
                    batch_norm, relu, conv1x1<5, true>, flatten, linear<7>, relu, linear<3>>;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: torch_export_fixture OUT.npz\n";
        return 2;
    }
    try {
        sgp::trainer<net_a> t{sgp::sgd{.lr = 0.1f, .momentum = 0.9f}, {.seed = 11}};
        const std::size_t n = 6;
        sgp::rng r(3);
        std::vector<float> x(n * 2 * 81);
        for (auto& v : x) v = r.normal();
        const int labels[n] = {0, 1, 2, 0, 1, 2};
        auto& net = t.net();
        net.reserve(n);
        // A few steps so that weights and running statistics are no longer their initial values.
        for (int s = 0; s < 3; ++s) {
            net.set_input_nchw(x.data(), n);
            t.train_step(labels, n, 0.1f);
        }
        net.set_input_nchw(x.data(), n);
        const float* out = net.forward(n, t.context(false));
        std::vector<float> logits(n * 3);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t c = 0; c < 3; ++c) logits[i * 3 + c] = out[c * n + i];
        sgp::npz_archive a;
        sgp::add_state_dict(net, a);
        a["input"] = sgp::npy_array::from_floats(x.data(), {n, 2, 9, 9});
        a["sgp_eval_logits"] = sgp::npy_array::from_floats(logits.data(), {n, 3});
        sgp::save_npz(argv[1], a);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
