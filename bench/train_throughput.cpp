// Training throughput (forward, backward, SGD step) of a VGG on random data, median of
// several repeats. Usage: bench_train_throughput [--model vgg13bn|vgg13bn-source|demo]
//   [--batch 64] [--threads 2] [--steps 5] [--repeats 5] [--json FILE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sgp/sgp.hpp>
#include <string>
#include <vector>

namespace {

struct options {
    std::string model = "vgg13bn", json;
    std::size_t batch = 64, threads = 2, steps = 5, repeats = 5;
};

template <class Net>
int run(const options& o) {
    sgp::trainer<Net> t{sgp::sgd{.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true},
                        {.threads = o.threads}};
    auto& net = t.net();
    net.reserve(o.batch);
    sgp::rng r(1);
    std::vector<int> labels(o.batch);
    for (auto& l : labels) l = static_cast<int>(r.below(Net::output_shape.c));
    auto fill = [&] {
        float* x = net.input_buffer();
        for (std::size_t i = 0; i < o.batch * Net::input_shape.size(); ++i) x[i] = r.normal();
    };
    fill();
    t.train_step(labels.data(), o.batch, 0.01f);  // warm-up: first-touch of every buffer
    std::vector<double> rates;
    for (std::size_t rep = 0; rep < o.repeats; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t s = 0; s < o.steps; ++s) t.train_step(labels.data(), o.batch, 0.01f);
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rates.push_back(static_cast<double>(o.steps * o.batch) / sec);
    }
    std::sort(rates.begin(), rates.end());
    const double median = rates[rates.size() / 2];
    std::printf("sgp %s training, batch %zu, %zu threads: %.1f images/s (median of %zu; min %.1f, max %.1f)\n",
                o.model.c_str(), o.batch, o.threads, median, rates.size(), rates.front(), rates.back());
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("framework", "sgp")
            .field("model", o.model)
            .field("batch", o.batch)
            .field("threads", o.threads)
            .field("images_per_second_median", median)
            .field("images_per_second_min", rates.front())
            .field("images_per_second_max", rates.back())
            .field("repeats", rates.size())
            .field("simd", sgp::simd::arch_name)
            .end_object();
        j.save(o.json);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        options o;
        for (int i = 1; i + 1 < argc; i += 2) {
            const std::string k = argv[i], v = argv[i + 1];
            if (k == "--model")
                o.model = v;
            else if (k == "--batch")
                o.batch = std::stoul(v);
            else if (k == "--threads")
                o.threads = std::stoul(v);
            else if (k == "--steps")
                o.steps = std::stoul(v);
            else if (k == "--repeats")
                o.repeats = std::stoul(v);
            else if (k == "--json")
                o.json = v;
            else
                throw sgp::error("unknown option " + k);
        }
        if (o.model == "vgg13bn") return run<sgp::models::vgg13bn<>>(o);
        if (o.model == "vgg13bn-source") return run<sgp::models::vgg13bn_source<>>(o);
        if (o.model == "demo") return run<sgp::models::vgg13bn_quarter<>>(o);
        throw sgp::error("unknown model " + o.model);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}
