// Inference of VGG13-BN (Network-Slimming variant, 1x32x32, 10 classes) in evaluation mode:
// batch-1 latency and batch-N throughput, for the full network and for pruned widths.
// Each figure is the median of --repeats timed runs (each the mean of several forward passes),
// with min and max. Usage: bench_inference --help
#include <cstdio>
#include <numeric>
#include <sgp/sgp.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using net_t = sgp::models::vgg13bn<>;

// The pruned widths of the performance issue: a VGG13-BN after heavy SGP pruning.
constexpr std::size_t pruned_widths[] = {8, 16, 24, 24, 32, 32, 32, 32, 32, 32};

struct options {
    std::string widths = "full", json;
    std::size_t threads = 1, batch = 1, repeats = 7;
};

std::vector<std::size_t> parse_widths(const std::string& s) {
    if (s == "full") return {};
    if (s == "pruned") return {std::begin(pruned_widths), std::end(pruned_widths)};
    std::vector<std::size_t> w;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');) w.push_back(std::stoul(item));
    return w;
}

// Keeps the first w[i] channels of group i (the weights are random: which ones does not matter).
void narrow(net_t& net, const std::vector<std::size_t>& w) {
    const auto& groups = sgp::prune::channel_groups<net_t>();
    if (w.empty()) return;
    if (w.size() != groups.size())
        throw sgp::error("--widths: VGG13-BN has " + std::to_string(groups.size()) + " channel groups, got " +
                         std::to_string(w.size()) + " widths");
    for (std::size_t i = 0; i < groups.size(); ++i) {
        if (w[i] == 0 || w[i] > groups[i].capacity)
            throw sgp::error("--widths: group " + std::to_string(i) + " must keep 1.." +
                             std::to_string(groups[i].capacity) + " channels");
        std::vector<std::size_t> keep(w[i]);
        std::iota(keep.begin(), keep.end(), std::size_t{0});
        sgp::prune::detail::keep_active(net, groups[i], keep);
    }
}

int run(const options& o) {
    net_t net(1);
    narrow(net, parse_widths(o.widths));
    net.reserve(o.batch);
    sgp::rng r(2);
    for (std::size_t i = 0; i < o.batch * net_t::input_shape.size(); ++i) net.input_buffer()[i] = r.normal();
    sgp::thread_pool pool(o.threads);
    sgp::run_context cx;
    cx.pool = o.threads > 1 ? &pool : nullptr;
    const auto t = bench::time_calls(o.repeats, 0.05, [&] { net.forward(o.batch, cx); });
    const double ms = 1e3 * t.median();
    const double gflops = 2.0 * static_cast<double>(net.active_macs()) * static_cast<double>(o.batch) / ms * 1e-6;
    std::printf(
        "sgp VGG13-BN %s, batch %zu, %zu thread(s): %.4f ms per batch (median of %zu; min %.4f, max %.4f), "
        "%.1f images/s, %.1f GFLOP/s\n",
        o.widths.c_str(), o.batch, o.threads, ms, t.seconds.size(), 1e3 * t.min(), 1e3 * t.max(),
        1000.0 * static_cast<double>(o.batch) / ms, gflops);
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("framework", "sgp")
            .field("model", "vgg13bn")
            .field("widths", o.widths)
            .field("macs", net.active_macs())
            .field("batch", o.batch)
            .field("threads", o.threads)
            .field("ms_median", ms)
            .field("ms_min", 1e3 * t.min())
            .field("ms_max", 1e3 * t.max())
            .field("images_per_second_median", 1000.0 * static_cast<double>(o.batch) / ms)
            .field("gflops_median", gflops)
            .field("repeats", t.seconds.size())
            .field("calls_per_repeat", t.calls_per_repeat)
            .field("simd", sgp::simd::arch_name)
            .end_object();
        j.save(o.json);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f("bench_inference [options]: VGG13-BN inference, evaluation mode, random weights and input");
        f.text("--widths", o.widths, "full, pruned (8,16,24,24,32,32,32,32,32,32) or W0,W1,...,W9");
        f.threads(o.threads, "threads (1: no thread is created)");
        f.size("--batch", o.batch, "images per forward pass", 1, 4096);
        f.size("--repeats", o.repeats, "timed repeats, median reported", 1, 10000);
        f.output("--json", o.json, "the figures as JSON");
        f.parse(argc, argv);
        return run(o);
    });
}
