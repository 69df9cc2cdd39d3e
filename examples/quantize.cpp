// Quantizes a trained (and pruned) network to the DPU's power-of-two INT8 and compares its
// Fashion-MNIST test accuracy in float and in int8 (integer arithmetic identical to the DPU's).
// Usage: quantize --help
#include <cstdio>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sgp/target/int8_target.hpp>
#include <string>
#include <vector>

#include "example_cli.hpp"

namespace {

const char* usage =
    "quantize --weights FILE [options]: INT8 (DPU fixed point) accuracy of a trained network\n"
    "  --weights FILE       state dict or checkpoint (.npz) of the network, pruned widths included\n"
    "  --model NAME         demo, vgg13bn or vgg13bn-source (default vgg13bn-source)\n"
    "  --data DIR           Fashion-MNIST directory (default: Debian's dataset-fashion-mnist)\n"
    "  --calib-images N     training images for calibration (default 1000)\n"
    "  --calibration M      max_abs or mse (default mse)\n"
    "  --test-limit N       test images (default all 10000)\n"
    "  --json FILE          the figures as JSON\n";

struct options {
    std::string weights, model = "vgg13bn-source", data = sgp::fashion_mnist_default_dir, calibration = "mse", json;
    std::size_t calib_images = 1000, test_limit = 0;
};

template <class Net>
int run(const options& o) {
    Net net(1);
    sgp::load_state_dict(net, o.weights);
    const auto train_set = sgp::load_fashion_mnist(o.data, true).head(o.calib_images);
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.test_limit);
    const auto lo = example::for_evaluation(example::fashion_mnist_options(256, 1, Net::input_shape.h));
    static_assert(Net::input_shape.c == 1, "Fashion-MNIST images have one channel");

    auto m = sgp::quant::fold(net);
    const auto method = o.calibration == "max_abs" ? sgp::quant::calibration::max_abs : sgp::quant::calibration::mse;
    if (o.calibration != "max_abs" && o.calibration != "mse")
        throw sgp::error("--calibration: '" + o.calibration + "' (max_abs or mse)");
    sgp::quant::calibrator cal(m, method);
    constexpr std::size_t P = Net::input_shape.size();
    std::vector<float> batch(256 * P);
    std::vector<int> labels(256);
    {
        sgp::batch_loader calib(train_set, lo);
        calib.start_epoch(0);
        // With one channel, the loader's channel-major batch is image after image.
        for (std::size_t n; (n = calib.next(batch.data(), labels.data())) > 0;)
            for (std::size_t i = 0; i < n; ++i) cal.observe(batch.data() + i * P);
    }
    cal.finish();

    sgp::batch_loader test(test_set, lo);
    test.start_epoch(0);
    // The fast int8 path gives the figures; every image also runs through the scalar reference,
    // and the two must agree bit for bit.
    sgp::target::int8_target int8(m);
    sgp::target::int8_reference reference(m);
    net.reserve(256);
    sgp::run_context cx;
    std::vector<float> out(m.outputs()), ref_out(m.outputs());
    const std::size_t k = out.size();
    std::size_t seen = 0, float_correct = 0, int8_correct = 0, agree = 0, mismatches = 0;
    auto argmax = [](const float* v, std::size_t n, std::size_t stride) {
        std::size_t a = 0;
        for (std::size_t i = 1; i < n; ++i)
            if (v[i * stride] > v[a * stride]) a = i;
        return a;
    };
    for (std::size_t n; (n = test.next(net.input_buffer(), labels.data())) > 0;) {
        std::copy(net.input_buffer(), net.input_buffer() + n * P, batch.begin());
        const float* y = net.forward(n, cx);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t f = argmax(y + i, k, n);
            int8.run(batch.data() + i * P, out.data());
            reference.run(batch.data() + i * P, ref_out.data());
            mismatches += int8.last_output() != reference.last_output();
            const std::size_t q = argmax(out.data(), k, 1);
            float_correct += f == static_cast<std::size_t>(labels[i]);
            int8_correct += q == static_cast<std::size_t>(labels[i]);
            agree += f == q;
        }
        seen += n;
    }
    const double fa = static_cast<double>(float_correct) / static_cast<double>(seen),
                 qa = static_cast<double>(int8_correct) / static_cast<double>(seen);
    std::printf("%zu test images: float %.2f %%, int8 %.2f %% (%+.2f points), same class on %.2f %%\n", seen, 100 * fa,
                100 * qa, 100 * (qa - fa), 100.0 * static_cast<double>(agree) / static_cast<double>(seen));
    std::printf("fast int8 path (%s) vs the scalar reference: %zu of %zu images differ\n",
                sgp::target::int8_target::lanes_name(), mismatches, seen);
    std::printf("fix points (%s calibration on %zu images): input %d\n", o.calibration.c_str(), cal.images(), m.fp_in);
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (const auto* c = std::get_if<sgp::quant::qconv>(&m.ops[i])) {
            const auto s = sgp::quant::shifts_of(*c, m.fp_before(i));
            std::printf("  layer %2zu %4zu -> %4zu%s  w %3d  b %3d  out %3d  shift_cut %2d  shift_bias %3d\n", c->layer,
                        c->cin, c->cout, c->relu ? " relu" : "     ", c->fp_w, c->fp_b, c->fp_out, s.cut, s.bias);
        }
    for (const auto& a : m.adjustments)
        std::printf("  adjusted op %zu %s fix point %d -> %d (%s)\n", a.op, a.tensor.c_str(), a.from, a.to,
                    a.reason.c_str());
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("model", o.model)
            .field("weights", o.weights)
            .field("calibration", o.calibration)
            .field("calibration_images", cal.images())
            .field("test_images", seen)
            .field("float_accuracy", fa)
            .field("int8_accuracy", qa)
            .field("same_class_fraction", static_cast<double>(agree) / static_cast<double>(seen))
            .field("fp_input", m.fp_in)
            .field("adjustments", m.adjustments.size())
            .field("int8_lanes", sgp::target::int8_target::lanes_name())
            .field("fast_path_mismatches", mismatches);
        j.key("layers").begin_array();
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<sgp::quant::qconv>(&m.ops[i])) {
                const auto s = sgp::quant::shifts_of(*c, m.fp_before(i));
                j.begin_object()
                    .field("layer", c->layer)
                    .field("cin", c->cin)
                    .field("cout", c->cout)
                    .field("fp_weights", c->fp_w)
                    .field("fp_bias", c->fp_b)
                    .field("fp_output", c->fp_out)
                    .field("shift_cut", s.cut)
                    .field("shift_bias", s.bias)
                    .end_object();
            }
        j.end_array().end_object();
        j.save(o.json);
    }
    if (mismatches)
        throw sgp::error("the fast int8 path differs from the scalar reference on " + std::to_string(mismatches) +
                         " images");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f(usage);
        f.text("--weights", o.weights);
        f.text("--model", o.model);
        f.text("--data", o.data);
        f.size("--calib-images", o.calib_images);
        f.text("--calibration", o.calibration);
        f.size("--test-limit", o.test_limit);
        f.text("--json", o.json);
        f.parse(argc, argv);
        if (o.weights.empty()) throw sgp::error("--weights is required (see --help)");
        return example::with_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
