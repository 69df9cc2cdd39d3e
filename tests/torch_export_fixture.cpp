// Writes an sgp-trained network's weights, an input batch and sgp's evaluation-mode outputs
// to one .npz, for golden/check_sgp_in_torch.py to load into PyTorch.
#include <iostream>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/sgp.hpp>
#include <string>

using namespace sgp::layers;
// The same layer list as make_golden.py's net_a.
using net_a =
    sgp::sequential<sgp::input<2, 9, 9>, conv2d<4, 3, 1, 1>, batch_norm, relu, max_pool<2>, conv2d<6, 3, 2, 1, true>,
                    batch_norm, relu, conv1x1<5, true>, flatten, linear<7>, relu, linear<3>>;

// A few training steps on a random batch (so that weights and running statistics are no
// longer their initial values), then the state_dict, the batch and the evaluation outputs.
template <class Net>
void write_fixture(const char* path, std::uint64_t seed) {
    constexpr std::size_t n = 6, k = Net::output_shape.c, size = Net::input_shape.size();
    sgp::trainer<Net> t{sgp::sgd{.lr = 0.1f, .momentum = 0.9f}, {.seed = seed}};
    sgp::rng r(3);
    std::vector<float> x(n * size);
    for (auto& v : x) v = r.normal();
    int labels[n];
    for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<int>(i % k);
    auto& net = t.net();
    net.reserve(n);
    for (int s = 0; s < 3; ++s) {
        net.set_input_nchw(x.data(), n);
        t.train_step(labels, n, 0.1f);
    }
    net.set_input_nchw(x.data(), n);
    const float* out = net.forward(n, t.context(false));
    std::vector<float> logits(n * k);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < k; ++c) logits[i * k + c] = out[c * n + i];
    sgp::npz_archive a;
    sgp::add_state_dict(net, a);
    a["input"] = sgp::npy_array::from_floats(x.data(), {n, Net::input_shape.c, Net::input_shape.h, Net::input_shape.w});
    a["sgp_eval_logits"] = sgp::npy_array::from_floats(logits.data(), {n, k});
    sgp::save_npz(path, a);
}

int main(int argc, char** argv) {
    if (argc != 2 && argc != 3) {
        std::cerr << "usage: torch_export_fixture OUT.npz [resnet20 | resnet18 | mobilenet_v2]\n";
        return 2;
    }
    try {
        // The families at make_golden.py's widths, 3x16x16, 10 classes.
        using in16 = sgp::input<3, 16, 16>;
        const std::string name = argc == 3 ? argv[2] : "net_a";
        if (name == "net_a")
            write_fixture<net_a>(argv[1], 11);
        else if (name == "resnet20")
            write_fixture<sgp::models::resnet20<in16, 10, 4>>(argv[1], 12);
        else if (name == "resnet18")
            write_fixture<sgp::models::resnet18<in16, 10, 4>>(argv[1], 13);
        else if (name == "mobilenet_v2")
            write_fixture<sgp::models::mobilenet_v2<in16, 10, 8>>(argv[1], 14);
        else
            throw sgp::error("unknown network " + name);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
