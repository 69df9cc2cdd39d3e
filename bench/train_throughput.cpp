// Training throughput (forward, backward, SGD step) of a VGG on random data, median of
// several repeats. Usage: bench_train_throughput --help
#include <cstdio>
#include <sgp/sgp.hpp>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

struct options {
    std::string model = "vgg13bn", json, precision = "fp32";
    std::size_t batch = 64, threads = 2, steps = 5, repeats = 5;
};

template <class Net>
int run(const options& o) {
    sgp::trainer<Net> t{sgp::sgd{.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true},
                        {.threads = o.threads, .precision = sgp::parse_precision(o.precision, "--precision")}};
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
    // Each timed call is `steps` training steps; at least 0.5 s per repeat.
    const auto tm = bench::time_calls(o.repeats, 0.5, [&] {
        for (std::size_t s = 0; s < o.steps; ++s) t.train_step(labels.data(), o.batch, 0.01f);
    });
    const double per_call = static_cast<double>(o.steps * o.batch);
    const double median = per_call / tm.median(), lo = per_call / tm.max(), hi = per_call / tm.min();
    const bool bf16 = o.precision == "bf16";
    const std::string kernel = bf16 ? std::string(sgp::kernels::name_of(sgp::kernels::bf16_kernel_in_use())) : "";
    std::printf("sgp %s training %s%s%s, batch %zu, %zu threads: %.1f images/s (median of %zu; min %.1f, max %.1f)\n",
                o.model.c_str(), o.precision.c_str(), bf16 ? " on " : "", kernel.c_str(), o.batch, o.threads, median,
                tm.seconds.size(), lo, hi);
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("framework", "sgp")
            .field("model", o.model)
            .field("batch", o.batch)
            .field("threads", o.threads)
            .field("images_per_second_median", median)
            .field("images_per_second_min", lo)
            .field("images_per_second_max", hi)
            .field("repeats", tm.seconds.size())
            .field("simd", sgp::simd::arch_name)
            .field("precision", o.precision)
            .field("bf16_kernel", kernel)
            .field("cpu", sgp::cpu_model())
            .end_object();
        j.save(o.json);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f("bench_train_throughput [options]: training steps (forward, backward, SGD) on random data");
        f.choice("--model", o.model, "the network", example::model_names);
        f.size("--batch", o.batch, "images per step", 2, 4096, "at least 2 for batch norm, at most 4096 (memory)");
        f.threads(o.threads);
        f.size("--steps", o.steps, "steps per timed repeat, at least", 1, 100000);
        f.size("--repeats", o.repeats, "timed repeats, median reported", 1, 10000);
        f.choice("--precision", o.precision, "convolutions and linear layers in fp32, or bf16 with fp32 sums",
                 {"fp32", "bf16"});
        f.output("--json", o.json, "the figures as JSON");
        f.parse(argc, argv);
        return example::with_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
