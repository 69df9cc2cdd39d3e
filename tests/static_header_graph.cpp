// For the static-header CTest of the networks beyond chains: a ResNet-20 (option-A shortcuts)
// or a MobileNetV2 (width / 8, depthwise, ReLU6, linear bottlenecks), pruned (about a third of
// every channel group removed, the channels chosen by seed), its statistics moved off their
// initial values, folded and calibrated; written with sgp::emit_header (network, weights, int8
// model) and sgp::emit_check_data (images and both outputs), the inputs of
// static_header_check.cpp, which reads no file.
// Usage: static_header_graph resnet20|mobilenet-v2 DIR
#include <cstdio>
#include <sgp/export/emit_header.hpp>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/prune/all.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <string>
#include <vector>

namespace {

template <class Net>
int emit(const std::string& dir, const std::string& name) {
    Net net(11);
    sgp::rng r(12);
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (!t.value) return;
        for (std::size_t i = 0; i < t.size(); ++i)
            t.value[i] = k.find("running_var") != std::string::npos ? 0.5f + std::abs(r.normal())
                                                                    : t.value[i] + 0.1f * r.normal();
    });
    // Prune: every group keeps two thirds of its channels (at least two), chosen at random.
    auto plan = sgp::prune::current_plan(net);
    for (auto& l : plan.layers) {
        auto& kept = l.keep;
        const std::size_t keep = std::max<std::size_t>(2, kept.size() * 2 / 3);
        while (kept.size() > keep) kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(r.next() % kept.size()));
    }
    sgp::prune::apply(net, plan);
    auto m = sgp::quant::fold(net);
    sgp::quant::calibrator cal(m);
    constexpr std::size_t P = Net::input_shape.size(), n = 8;
    std::vector<float> images(n * P);
    for (auto& v : images) v = r.normal();
    for (std::size_t i = 0; i < n; ++i) cal.observe(images.data() + i * P);
    cal.finish();
    sgp::emit_header(net, &m, dir + "/model.hpp", {.name_space = "sgp_model", .source = "a pruned " + name});
    sgp::emit_check_data(net, m, images.data(), n, dir + "/check_data.hpp", "tests/static_header_graph " + name);
    std::printf("%s: %zu of %zu parameters kept, %zu int8 ops\n", name.c_str(), net.active_parameter_count(),
                Net::parameter_count, m.ops.size());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc != 3) throw sgp::error("usage: static_header_graph resnet20|mobilenet-v2 DIR");
        const std::string model = argv[1];
        using in = sgp::input<1, 32, 32>;
        if (model == "resnet20") return emit<sgp::models::resnet20<in>>(argv[2], model);
        if (model == "mobilenet-v2") return emit<sgp::models::mobilenet_v2<in, 10, 8>>(argv[2], model);
        throw sgp::error("unknown model '" + model + "'");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "static_header_graph: %s\n", e.what());
        return 1;
    }
}
