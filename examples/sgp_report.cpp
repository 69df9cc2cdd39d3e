// sgp-report: the layer-wise analysis of a network (a checkpoint or state dict, at the widths
// it holds) or of an .xmodel: per layer the workload, memory, measured CPU time (fp32 and
// int8), int8 error and a DPU estimate, written as JSON, CSV and markdown (docs/analysis.md).
// Usage: sgp-report --help
#include <algorithm>
#include <cstdio>
#include <optional>
#include <sgp/analysis/qmodel_table.hpp>
#include <sgp/analysis/report.hpp>
#include <sgp/quant/calibrate.hpp>
#include <sgp/sgp.hpp>
#include <sgp/target/int8_target.hpp>
#include <string>
#include <vector>

#include "example_cli.hpp"
#if defined(SGP_HAS_XMODEL)
#include <sgp/export/xmodel_import.hpp>
#endif

namespace {

struct options {
    std::string model = "demo", weights, xmodel, data = sgp::fashion_mnist_default_dir, out, dpu = "B4096", board;
    std::size_t threads = 1, batch = 1, repeats = 21, calib_images = 500, sqnr_images = 32, timing_images = 8;
    float clock_mhz = 300, ddr = 19.2f, overhead = 1;  // applied only where given
};

// The images the report runs: Fashion-MNIST training images, normalised and padded to the
// network's input (the test set is not read), read once; or, for an .xmodel whose input is not
// a one-channel square image, seeded uniform noise of its shape, said in the report's note.
class image_source {
public:
    image_source(const options& o, std::size_t c, std::size_t h, std::size_t w) : size_(c * h * w) {
        if (c == 1 && h == w) {
            set_ = sgp::load_fashion_mnist(o.data, true);
            lo_ = example::for_evaluation(example::fashion_mnist_options(256, 1, h));
        }
    }
    bool synthetic() const { return set_.size() == 0; }
    // Images first .. first + count - 1, [C][H][W] each, one after another.
    std::vector<float> images(std::size_t first, std::size_t count) const {
        std::vector<float> x(count * size_);
        if (synthetic()) {
            sgp::rng r(first + 1);
            for (auto& v : x) v = r.uniform(-1.f, 2.f);  // about the range of normalised images
            return x;
        }
        const auto part = set_.slice(first, count);  // refused, naming the set, past its end
        sgp::batch_loader l(part, lo_);
        l.start_epoch(0);
        std::vector<int> labels(lo_.batch);
        std::vector<float> b(lo_.batch * size_);
        std::size_t at = 0;
        // With one channel, the loader's channel-major batch is image after image.
        for (std::size_t n; (n = l.next(b.data(), labels.data())) > 0; at += n)
            std::copy_n(b.data(), n * size_, x.data() + at * size_);
        return x;
    }
    std::size_t image_size() const { return size_; }

private:
    std::size_t size_;
    sgp::dataset set_;
    sgp::loader_options lo_;
};

sgp::analysis::dpu_config dpu_of(const options& o, const example::flags& f) {
    auto c = o.board.empty() ? sgp::analysis::dpu_size(o.dpu)
                             : sgp::analysis::on_board(sgp::analysis::dpu_board(o.board), 1);
    if (f.given("--clock-mhz")) c.clock_mhz = o.clock_mhz;
    if (f.given("--ddr-gbytes")) c.ddr_gbytes_per_s = o.ddr;
    if (f.given("--overhead-us")) c.overhead_us = o.overhead;
    return c;
}

void finish(sgp::analysis::report& r, const options& o, const example::flags& f) {
    sgp::analysis::estimate_dpu(r, dpu_of(o, f));
    sgp::analysis::save(r, o.out);
    const auto d = sgp::analysis::dpu_sum(r, r.dpu_rows);
    std::printf("%s (%s): %zu layers, %zu parameters, %zu multiply-adds per image\n", r.network.c_str(),
                r.state.c_str(), r.table.rows.size(), r.table.total.parameters, r.table.total.macs);
    if (r.has_fp32)
        std::printf("  CPU fp32 (%s, %zu thread(s), batch %zu): %.4f ms whole, %.4f ms summed over layers (%.1f %%)\n",
                    r.cpu.c_str(), r.threads, r.batch, r.fp32.total_ms, r.fp32.sum_ms,
                    100 * r.fp32.sum_ms / r.fp32.total_ms);
    if (r.has_int8)
        std::printf("  CPU int8 (1 thread, batch 1): %.4f ms whole, %.4f ms summed over ops (%.1f %%)\n",
                    r.int8.total_ms, r.int8.sum_ms, 100 * r.int8.sum_ms / r.int8.total_ms);
    else if (!r.int8_note.empty())
        std::printf("  int8: %s\n", r.int8_note.c_str());
    std::printf("  DPU estimate (%s, %.0f MHz, %.1f GB/s): %.1f us (%zu of %zu layers memory-bound)\n",
                r.dpu.name.c_str(), r.dpu.clock_mhz, r.dpu.ddr_gbytes_per_s, d.total_us, d.memory_bound, d.layers);
    std::printf("  written: %s.json, %s.csv, %s.md\n", o.out.c_str(), o.out.c_str(), o.out.c_str());
}

// The int8 model's figures: calibrated on the first images (unless the model holds its fix
// points, as an .xmodel does), timed per op, its error per op on the images after those.
void int8_figures(sgp::analysis::report& r, sgp::quant::qmodel& m, const std::vector<std::size_t>& nodes,
                  const options& o, const image_source& src, bool calibrate) {
    const std::size_t image_size = src.image_size();
    if (calibrate) {
        const auto calib = src.images(0, o.calib_images);
        sgp::quant::calibrator cal(m, sgp::quant::calibration::mse);
        for (std::size_t i = 0; i < o.calib_images; ++i) cal.observe(calib.data() + i * image_size);
        cal.finish();
    }
    const auto x = src.images(o.calib_images, o.sqnr_images);
    sgp::target::int8_target fast(m);
    const auto t =
        sgp::analysis::time_int8(fast, x.data(), std::min(o.timing_images, o.sqnr_images), image_size, o.repeats);
    const auto err = sgp::analysis::int8_error(m, x.data(), o.sqnr_images, image_size);
    sgp::analysis::attach_int8(r, nodes, t, err);
    r.sqnr_images = o.sqnr_images;
}

template <class Net>
int run(const options& o, const example::flags& f) {
    static_assert(Net::input_shape.c == 1 && Net::input_shape.h == Net::input_shape.w,
                  "Fashion-MNIST images have one channel and are square");
    Net net(1);
    sgp::analysis::report r;
    r.network = o.model;
    r.weights = o.weights;
    if (!o.weights.empty()) {
        sgp::load_state_dict(net, o.weights);
        sgp::require_finite(net, o.weights, "the weights of a diverged run cannot be analysed");
    }
    r.cpu = sgp::cpu_model();
    r.threads = o.threads, r.batch = o.batch, r.repeats = o.repeats;
    r.table = sgp::analysis::table_of(net);
    r.state = r.table.total == sgp::cost{Net::parameter_count, Net::macs} ? "declared" : "pruned";
    const image_source src(o, Net::input_shape.c, Net::input_shape.h, Net::input_shape.w);
    {
        const auto x = src.images(0, o.batch);
        sgp::thread_pool pool(o.threads);
        sgp::analysis::attach_fp32(r, sgp::analysis::time_fp32(net, x.data(), o.batch, o.repeats, &pool));
    }
    // Only a layer without an int8 form is a note; every other error stops the report.
    std::optional<sgp::quant::qmodel> m;
    try {
        m = sgp::quant::fold(net);
    } catch (const sgp::error& e) {
        r.int8_note = std::string("no int8 model: ") + e.what();
    }
    if (m) {
        int8_figures(r, *m, sgp::analysis::nodes_of_ops(*m), o, src, true);
        if (o.weights.empty()) r.int8_note = "initial weights: the int8 error (SQNR) says little without trained ones";
    }
    finish(r, o, f);
    return 0;
}

#if defined(SGP_HAS_XMODEL)
int run_xmodel(const options& o, const example::flags& f) {
    auto m = sgp::xmodel::to_qmodel(sgp::xmodel::read(o.xmodel), o.xmodel);
    const image_source src(o, m.c, m.h, m.w);
    sgp::analysis::report r;
    r.network = o.xmodel;
    r.weights = o.xmodel;
    r.state = "xmodel";
    r.cpu = sgp::cpu_model();
    r.repeats = o.repeats;
    r.table = sgp::analysis::table_of(m);
    std::vector<std::size_t> nodes(m.ops.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) nodes[i] = i;
    int8_figures(r, m, nodes, o, src, false);
    r.int8_note = "SQNR against the float model of the file's dequantized weights";
    if (src.synthetic())
        r.int8_note += "; the graph takes " + std::to_string(m.c) + "x" + std::to_string(m.h) + "x" +
                       std::to_string(m.w) +
                       " inputs, not Fashion-MNIST images: timed and measured on seeded "
                       "uniform noise in [-1, 2]";
    finish(r, o, f);
    return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        options o;
        example::flags f(
            "sgp-report (--weights FILE | --xmodel FILE) --out STEM [options]: the layer-wise analysis (workload, "
            "memory, CPU time, int8 error, DPU estimate) as STEM.json, STEM.csv and STEM.md");
        f.choice("--model", o.model, "the network the weights are for", example::any_model_names);
        f.text("--weights", o.weights,
               "state dict or checkpoint (.npz), pruned widths included (none: the declared "
               "network with initial weights)");
        f.text("--xmodel", o.xmodel, "analyse an .xmodel's int8 graph instead of a network (xmodel component)");
        f.output("--out", o.out, "the report's files: STEM.json, STEM.csv, STEM.md")->required();
        f.text("--data", o.data, "Fashion-MNIST directory (training images for calibration, error and timing)");
        f.threads(o.threads, "threads of the fp32 timing (int8 runs on one)");
        f.size("--batch", o.batch, "images per fp32 forward in the timing", 1, 4096);
        f.size("--repeats", o.repeats, "timed repeats (medians)", 1, 100000);
        f.size("--calib-images", o.calib_images, "training images for int8 calibration", 1, 50000);
        f.size("--sqnr-images", o.sqnr_images, "training images (after the calibration ones) for the int8 error", 1,
               10000);
        std::vector<std::string> sizes;
        for (const auto& c : sgp::analysis::dpu_sizes()) sizes.push_back(c.name);
        f.choice("--dpu", o.dpu, "DPUCZDX8G size of the estimate", sizes);
        std::vector<std::string> boards;
        for (const auto& b : sgp::analysis::dpu_boards()) boards.push_back(b.name);
        f.choice("--board", o.board, "a board's DPU (size, clock, DDR bandwidth of one busy core) instead of --dpu",
                 boards);
        f.real("--clock-mhz", o.clock_mhz, "DPU clock in MHz (default: the size's or the board's)", 1, 1000);
        f.real("--ddr-gbytes", o.ddr, "DDR bandwidth in GB/s (default: 19.2, or the board's)", 0.1, 1000);
        f.real("--overhead-us", o.overhead, "fixed cost per DPU layer in microseconds (default 1)", 0, 1000);
        f.parse(argc, argv);
        if (!o.board.empty() && f.given("--dpu")) throw sgp::error("--board and --dpu: give one of them");
        if (!o.weights.empty() && !o.xmodel.empty()) throw sgp::error("--weights and --xmodel: give one of them");
        // Checked before any work: the training set has 60,000 images.
        if (o.calib_images + o.sqnr_images > 60000)
            throw sgp::error("--calib-images + --sqnr-images: " + std::to_string(o.calib_images + o.sqnr_images) +
                             " training images asked, Fashion-MNIST has 60,000");
        if (!o.xmodel.empty()) {
#if defined(SGP_HAS_XMODEL)
            return run_xmodel(o, f);
#else
            throw sgp::error("--xmodel: built without the xmodel component (install protobuf)");
#endif
        }
        return example::with_any_model(o.model, [&]<class Net>() { return run<Net>(o, f); });
    });
}
