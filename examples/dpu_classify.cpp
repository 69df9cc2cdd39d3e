// The board program: Fashion-MNIST test accuracy and throughput of a compiled .xmodel on the
// DPU through VART (runtime<Net, dpu_target>). Built where CMake finds XIR and VART (the
// board's sysroot); docs/deployment.md gives the whole flow. The same program, built on the
// host against the VART stand-in of tests/, checks the data path in CTest.
// Usage: dpu_classify --xmodel FILE [options]
#include <chrono>
#include <cstdio>
#include <sgp/sgp.hpp>
#include <sgp/target/dpu_runtime.hpp>
#include <string>
#include <vector>

#include "example_cli.hpp"

namespace {

struct options {
    std::string xmodel, model = "vgg13bn-source", data = sgp::fashion_mnist_default_dir;
    std::size_t limit = 0;
};

template <class Net>
int run(const options& o) {
    sgp::runtime<Net, sgp::dpu_target> dpu(o.xmodel);
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.limit);
    sgp::batch_loader test(test_set,
                           example::for_evaluation(example::fashion_mnist_options(256, 1, Net::input_shape.h)));
    test.start_epoch(0);
    constexpr std::size_t P = Net::input_shape.size(), K = Net::output_shape.size();
    static_assert(Net::input_shape.c == 1, "one channel: the loader's batch is image after image");
    std::vector<float> images(256 * P), scores(256 * K);
    std::vector<int> labels(256);
    std::size_t seen = 0, correct = 0;
    double seconds = 0;
    for (std::size_t n; (n = test.next(images.data(), labels.data())) > 0; seen += n) {
        const auto t0 = std::chrono::steady_clock::now();
        dpu.run(images.data(), scores.data(), n);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t best = 0;
            for (std::size_t k = 1; k < K; ++k)
                if (scores[i * K + k] > scores[i * K + best]) best = k;
            correct += best == static_cast<std::size_t>(labels[i]);
        }
    }
    std::printf(
        "%zu test images on the DPU (batch %zu, fix points in %d / out %d): %zu correct, accuracy %.2f %%, "
        "%.1f images/s\n",
        seen, dpu.batch(), dpu.input_fix_point(), dpu.output_fix_point(), correct,
        100.0 * static_cast<double>(correct) / static_cast<double>(seen), static_cast<double>(seen) / seconds);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f("dpu_classify --xmodel FILE [options]: Fashion-MNIST on the DPU");
        f.text("--xmodel", o.xmodel, "the model compiled by vai_c_xir for this board's DPU")->required();
        f.choice("--model", o.model, "the network it was exported from", example::model_names);
        f.text("--data", o.data, "Fashion-MNIST directory (default: Debian's dataset-fashion-mnist)");
        f.size("--limit", o.limit, "test images (0: all 10000)", 0, 1u << 30);
        f.parse(argc, argv);
        return example::with_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
