// Batch-1 latency, 1 thread, of a pruned network in float (sgp's fused evaluation forward) and
// in int8 (the fast int8 path, and the scalar reference of the DPU's arithmetic), in one run.
// Calibrated on random images: fix points change the integers, not the work.
// Usage: bench_int8 --help
#include <cstdio>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sgp/target/int8_target.hpp>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

struct options {
    std::string weights, model = "vgg13bn-source", json;
    std::size_t repeats = 9;
};

template <class Net>
int run(const options& o) {
    Net net(1);
    sgp::load_state_dict(net, o.weights);
    constexpr std::size_t P = Net::input_shape.size();
    sgp::rng r(3);
    std::vector<float> image(P);
    auto m = sgp::quant::fold(net);
    sgp::quant::calibrator cal(m);
    for (int i = 0; i < 32; ++i) {
        for (auto& v : image) v = r.normal();
        cal.observe(image.data());
    }
    cal.finish();
    sgp::target::int8_target fast(m);
    sgp::target::int8_reference ref(m);
    std::vector<float> out(m.outputs());

    net.reserve(1);
    std::copy(image.begin(), image.end(), net.input_buffer());
    sgp::run_context cx;  // one thread
    const auto tf = bench::time_calls(o.repeats, 0.1, [&] { net.forward(1, cx); });
    const auto tq = bench::time_calls(o.repeats, 0.1, [&] { fast.run(image.data(), out.data()); });
    const auto tr = bench::time_calls(o.repeats, 0.1, [&] { ref.run(image.data(), out.data()); });
    const double f = 1e3 * tf.median(), q = 1e3 * tq.median(), s = 1e3 * tr.median();
    std::printf("%s (%zu parameters, %zu MACs), batch 1, 1 thread, median of %zu:\n", o.model.c_str(),
                net.active_parameter_count(), net.active_macs(), tq.seconds.size());
    std::printf("  float (fused evaluation)  %.4f ms  (min %.4f, max %.4f)\n", f, 1e3 * tf.min(), 1e3 * tf.max());
    std::printf("  int8 fast (%s)  %.4f ms  (min %.4f, max %.4f)  %.2fx float\n",
                sgp::target::int8_target::lanes_name(), q, 1e3 * tq.min(), 1e3 * tq.max(), f / q);
    std::printf("  int8 scalar reference     %.4f ms  %.2fx float\n", s, f / s);
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("model", o.model)
            .field("weights", o.weights)
            .field("cpu", sgp::cpu_model())
            .field("parameters", net.active_parameter_count())
            .field("macs", net.active_macs())
            .field("batch", 1)
            .field("threads", 1)
            .field("lanes", sgp::target::int8_target::lanes_name())
            .field("float_ms_median", f)
            .field("int8_ms_median", q)
            .field("int8_reference_ms_median", s)
            .field("float_ms_min", 1e3 * tf.min())
            .field("int8_ms_min", 1e3 * tq.min())
            .field("int8_speedup_over_float", f / q)
            .field("repeats", tq.seconds.size())
            .end_object();
        j.save(o.json);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f(
            "bench_int8 --weights FILE [options]: float vs int8 batch-1 latency of a trained (pruned) network");
        f.text("--weights", o.weights, "state dict or checkpoint (.npz), pruned widths included")->required();
        f.choice("--model", o.model, "the network the weights are for", example::int8_model_names);
        f.size("--repeats", o.repeats, "timed repeats, median reported", 1, 10000);
        f.output("--json", o.json, "the figures as JSON");
        f.parse(argc, argv);
        return example::with_int8_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
