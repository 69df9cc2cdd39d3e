// Quantizes a trained (and pruned) network to the DPU's power-of-two INT8 and compares its
// Fashion-MNIST test accuracy in float and in int8 (integer arithmetic identical to the DPU's).
// Usage: quantize --help
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sgp/analysis/dpu_placement.hpp>
#include <sgp/export/emit_header.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/quant/fix_point_search.hpp>
#include <sgp/quant/qat.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_reference.hpp>
#include <sgp/target/int8_target.hpp>
#include <sgp/target/runtime.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "example_cli.hpp"
#if defined(SGP_HAS_XMODEL)
#include <sgp/export/xmodel_writer.hpp>
#endif

namespace {

struct options {
    std::string weights, model = "vgg13bn-source", data = sgp::fashion_mnist_default_dir, calibration = "mse", json,
                         xmodel, header, header_check;
    std::size_t header_images = 16;
    std::size_t calib_images = 1000, test_limit = 0, reference_images = 1000, search_images = 0;
    std::size_t qat_images = 0, qat_epochs = 3, threads = 1;
    double qat_lr = 0.004;
};

// The first N test images and what the source network gives for them, in float (one batch of
// N) and in int8: the data a program built on the emitted header must reproduce exactly.
template <class Net>
void write_header_check(Net& net, const sgp::quant::qmodel& m, const sgp::dataset& test_set,
                        const sgp::loader_options& lo, const options& o) {
    constexpr std::size_t P = Net::input_shape.size();
    const std::size_t n = std::min(o.header_images, test_set.size());
    std::vector<float> images(n * P), chw(n * P);
    std::vector<int> labels(n);
    const auto head = test_set.head(n);
    auto one_batch = lo;
    one_batch.batch = n;  // every image in one batch, whatever the evaluation batch
    sgp::batch_loader loader(head, one_batch);
    loader.start_epoch(0);
    const std::size_t got = loader.next(images.data(), labels.data());
    if (got != n) throw sgp::error("--header-check: could not read " + std::to_string(n) + " test images");
    // The loader's batch is channel-major [C][n][H][W]; the runtimes take image after image.
    constexpr std::size_t C = Net::input_shape.c, plane = Net::input_shape.plane();
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < C; ++c)
            std::copy_n(images.data() + (c * n + i) * plane, plane, chw.data() + i * P + c * plane);
    sgp::emit_check_data(net, m, chw.data(), n, o.header_check, "examples/quantize --header-check");
}

template <class Net>
int run(const options& o) {
    Net net(1);
    sgp::load_state_dict(net, o.weights);
    sgp::require_finite(net, o.weights, "the weights of a diverged run cannot be quantized or exported");
    const auto train_set = sgp::load_fashion_mnist(o.data, true).head(std::max(o.calib_images, o.qat_images));
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.test_limit);
    // A data folder with fewer training images than the flags ask for (a held-out split).
    for (const auto& [flag, want] : {std::pair{"--search-images", o.search_images}, {"--qat-images", o.qat_images}})
        if (want > train_set.size())
            throw sgp::error(std::string(flag) + ": " + std::to_string(want) + " images, but " + o.data + " has " +
                             std::to_string(train_set.size()) + " training images");
    // Batches of 64: the float network's buffers hold a batch at the declared (unpruned) widths,
    // about 2.5 GB for MobileNetV2 at 64. Its outputs do not depend on the batch size.
    constexpr std::size_t B = 64;
    auto lo = example::for_evaluation(example::fashion_mnist_options(B, 1, Net::input_shape.h));
    lo.batch = B;
    static_assert(Net::input_shape.c == 1, "Fashion-MNIST images have one channel");

    auto m = sgp::quant::fold(net);
    const auto method = o.calibration == "max_abs" ? sgp::quant::calibration::max_abs : sgp::quant::calibration::mse;
    sgp::quant::calibrator cal(m, method);
    constexpr std::size_t P = Net::input_shape.size();
    std::vector<float> batch(B * P), training;
    std::vector<int> labels(B);
    {
        sgp::batch_loader calib(train_set, lo);
        calib.start_epoch(0);
        // With one channel, the loader's channel-major batch is image after image.
        for (std::size_t n; (n = calib.next(batch.data(), labels.data())) > 0;)
            for (std::size_t i = 0; i < n; ++i) {
                if (cal.images() < o.calib_images) cal.observe(batch.data() + i * P);
                training.insert(training.end(), batch.data() + i * P, batch.data() + (i + 1) * P);
            }
    }
    cal.finish();
    std::printf("calibrated on %zu training images (%s)\n", cal.images(), o.calibration.c_str());
    std::fflush(stdout);
    sgp::quant::search_result found;
    double search_seconds = 0;
    if (o.search_images > 0) {
        const auto t0 = std::chrono::steady_clock::now();
        found = sgp::quant::search_fix_points(m, training.data(), o.search_images, {.verbose = true});
        search_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "fix-point search on %zu training images: mean KL to float %.5f -> %.5f, %zu moves, %zu "
            "evaluations, %.1f s\n",
            o.search_images, found.loss_before, found.loss_after, found.moves, found.evaluations, search_seconds);
        std::fflush(stdout);  // long runs: progress shows in a log as it happens
    }
    sgp::quant::qat_result tuned;
    double qat_seconds = 0;
    if (o.qat_images > 0) {
        const auto t0 = std::chrono::steady_clock::now();
        // The float network's outputs for the fine-tuning images: what the int8 model learns to give.
        const std::size_t n = o.qat_images, k = Net::output_shape.size();
        std::vector<float> teacher(n * k);
        net.reserve(B);
        sgp::run_context cx;
        for (std::size_t b0 = 0; b0 < n; b0 += B) {
            const std::size_t bn = std::min(B, n - b0);
            std::copy_n(training.data() + b0 * P, bn * P, net.input_buffer());
            const float* y = net.forward(bn, cx);
            for (std::size_t i = 0; i < bn; ++i)
                for (std::size_t j = 0; j < k; ++j) teacher[(b0 + i) * k + j] = y[j * bn + i];
        }
        sgp::thread_pool pool(o.threads);
        tuned = sgp::quant::qat_finetune(m, training.data(), teacher.data(), n,
                                         {.epochs = o.qat_epochs, .lr = o.qat_lr, .pool = &pool, .verbose = true});
        qat_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf(
            "quantization-aware fine-tuning on %zu training images, %zu epochs: mean KL to float %.5f -> %.5f, "
            "%.1f s\n",
            n, o.qat_epochs, tuned.loss_before, tuned.loss_after, qat_seconds);
        if (tuned.kept_epoch == 0) std::printf("  no epoch lowered it: the calibrated weights are kept\n");
        std::fflush(stdout);
    }

    sgp::batch_loader test(test_set, lo);
    test.start_epoch(0);
    // The fast int8 path gives the figures; every image also runs through the scalar reference,
    // and the two must agree bit for bit.
    sgp::target::int8_target int8(m);
    sgp::target::int8_reference reference(m);
    net.reserve(B);
    sgp::run_context cx;
    std::vector<float> out(m.outputs()), ref_out(m.outputs());
    const std::size_t k = out.size();
    std::size_t seen = 0, float_correct = 0, int8_correct = 0, agree = 0, mismatches = 0, checked = 0;
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
            if (o.reference_images == 0 || checked < o.reference_images) {
                reference.run(batch.data() + i * P, ref_out.data());
                mismatches += int8.last_output() != reference.last_output();
                ++checked;
            }
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
                sgp::target::int8_target::lanes_name(), mismatches, checked);
    std::printf("fix points (%s calibration on %zu images%s): input %d\n", o.calibration.c_str(), cal.images(),
                o.search_images > 0 ? ", then the search" : "", m.fp_in);
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (const auto* c = std::get_if<sgp::quant::qconv>(&m.ops[i])) {
            const auto s = sgp::quant::shifts_of(*c, m.fp_input(i));
            std::printf("  layer %2zu %4zu -> %4zu%s  w %3d  b %3d  out %3d  shift_cut %2d  shift_bias %3d\n", c->layer,
                        c->cin, c->cout,
                        c->act == sgp::quant::activation::none   ? "      "
                        : c->act == sgp::quant::activation::relu ? " relu "
                                                                 : " relu6",
                        c->fp_w, c->fp_b, c->fp_out, s.cut, s.bias);
        }
    for (const auto& a : m.adjustments)
        std::printf("  adjusted op %zu %s fix point %d -> %d (%s)\n", a.op, a.tensor.c_str(), a.from, a.to,
                    a.reason.c_str());
    // Before export: does the DPU run every op, or does the compiled graph split?
    const auto placed = sgp::analysis::place(m);
    sgp::analysis::print_placement(placed, std::cout);
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("model", o.model)
            .field("cpu", sgp::cpu_model())
            .field("weights", o.weights)
            .field("calibration", o.calibration)
            .field("calibration_images", cal.images())
            .field("search_images", o.search_images)
            .field("search_kl_before", found.loss_before)
            .field("search_kl_after", found.loss_after)
            .field("search_moves", found.moves)
            .field("search_seconds", search_seconds)
            .field("qat_images", o.qat_images)
            .field("qat_epochs", o.qat_images > 0 ? o.qat_epochs : 0)
            .field("qat_lr", o.qat_lr)
            .field("qat_kl_before", tuned.loss_before)
            .field("qat_kl_after", tuned.loss_after)
            .field("qat_steps", tuned.steps)
            .field("qat_kept_epoch", tuned.kept_epoch)
            .field("qat_seconds", qat_seconds)
            .field("test_images", seen)
            .field("float_accuracy", fa)
            .field("int8_accuracy", qa)
            .field("int8_correct", int8_correct)
            .field("same_class_fraction", static_cast<double>(agree) / static_cast<double>(seen))
            .field("fp_input", m.fp_in)
            .field("adjustments", m.adjustments.size())
            .field("int8_lanes", sgp::target::int8_target::lanes_name())
            .field("fast_path_mismatches", mismatches)
            .field("dpu_ops", placed.ops.size() - placed.cpu_ops())
            .field("cpu_ops", placed.cpu_ops())
            .field("dpu_subgraphs", placed.dpu_subgraphs())
            .field("reference_checked_images", checked);
        j.key("layers").begin_array();
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<sgp::quant::qconv>(&m.ops[i])) {
                const auto s = sgp::quant::shifts_of(*c, m.fp_input(i));
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
#if defined(SGP_HAS_XMODEL)
    if (!o.xmodel.empty()) {
        sgp::xmodel::write(m, o.xmodel, o.model);
        std::printf("quantized graph written to %s (compile it with vai_c_xir: docs/deployment.md)\n",
                    o.xmodel.c_str());
    }
#endif
    if (!o.header.empty()) {
        sgp::emit_header(net, &m, o.header, {.name_space = "sgp_model", .source = o.model + " " + o.weights});
        std::printf("static header written to %s\n", o.header.c_str());
        if (!o.header_check.empty()) write_header_check<Net>(net, m, test_set, lo, o);
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
        example::flags f("quantize --weights FILE [options]: INT8 (DPU fixed point) accuracy of a trained network");
        f.text("--weights", o.weights, "state dict or checkpoint (.npz) of the network, pruned widths included")
            ->required();
        f.choice("--model", o.model, "the network the weights are for", example::int8_model_names);
        f.text("--data", o.data, "Fashion-MNIST directory (default: Debian's dataset-fashion-mnist)");
        f.size("--calib-images", o.calib_images, "training images for calibration", 1, 60000);
        f.choice("--calibration", o.calibration, "calibration method", {"max_abs", "mse"});
        f.size("--search-images", o.search_images,
               "then search the fix points that bring the int8 output closest to float's on the first N "
               "calibration images (0: off; quant/fix_point_search.hpp)",
               0, 60000);
        f.size("--qat-images", o.qat_images,
               "then fine-tune the int8 model's weights (fix points kept) towards the float network's outputs on the "
               "first N training images, the DPU's arithmetic in the forward pass (0: off; quant/qat.hpp)",
               0, 60000);
        f.size("--qat-epochs", o.qat_epochs, "epochs of that fine-tuning", 1, 1000);
        f.real("--qat-lr", o.qat_lr, "its step, in quantization steps of each tensor", 1e-6, 10);
        f.threads(o.threads,
                  "threads for the fine-tuning: up to 2 share its work (a batch is split into 2 fixed shards, so "
                  "the result does not depend on the thread count)");
        f.size("--test-limit", o.test_limit, "test images (0: all 10000)", 0, 1u << 30);
        f.size("--reference-images", o.reference_images,
               "also run the scalar reference of the DPU's arithmetic on the first N test images and require the "
               "same integers (0: all)",
               0, 1u << 30);
        f.output("--json", o.json, "the figures as JSON");
        f.output("--xmodel", o.xmodel, "write the quantized graph as an .xmodel for vai_c_xir (xmodel component)");
        f.output("--header", o.header, "write the pruned network and its int8 model as a C++ header (no file I/O)");
        f.output("--header-check", o.header_check,
                 "with --header: also N test images and the outputs the header must reproduce");
        f.size("--header-images", o.header_images, "images in --header-check", 1, 256,
               "the float network runs them as one batch");
        f.parse(argc, argv);
        if (o.search_images > o.calib_images)
            throw sgp::error("--search-images: " + std::to_string(o.search_images) +
                             " is more than the calibration images (--calib-images " + std::to_string(o.calib_images) +
                             ")");
#if !defined(SGP_HAS_XMODEL)
        if (!o.xmodel.empty()) throw sgp::error("--xmodel: built without the xmodel component (install protobuf)");
#endif
        return example::with_int8_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
