// Trains a network on Fashion-MNIST (padded to 32x32), shows validation accuracy (images held
// out of the training set) after every epoch, and reports test accuracy, read once at the
// end, and throughput. Usage: train_fashion_mnist --help
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sgp/sgp.hpp>
#include <string>
#include <thread>

#include "example_cli.hpp"

namespace {

struct options {
    std::string model = "demo", data = sgp::fashion_mnist_default_dir, checkpoint, json, schedule = "cosine",
                precision = "fp32";
    std::size_t epochs = 0, batch = 64, threads = example::cores(), limit = 0, test_limit = 0, validation = 5000;
    std::uint64_t seed = 1;
    float lr = 0.05f, weight_decay = 1e-4f, sparsity = 0.f;
    bool augment = false;
    // The flags that shape the weights, recorded in the checkpoint: a resumed run must match them.
    std::map<std::string, std::string> settings;
};

// Flags a resumed run may change: how long, how fast, where from and where to.
const std::set<std::string> may_change_on_resume = {"--epochs",     "--threads", "--data",
                                                    "--checkpoint", "--json",    "--test-limit"};

options parse(int argc, char** argv) {
    options o;
    example::flags f(
        "train_fashion_mnist: trains a network (VGG, ResNet, MobileNet) on Fashion-MNIST (padded to 32x32) and "
        "reports validation accuracy per epoch and test accuracy (read once, at the end) and throughput");
    f.choice("--model", o.model,
             "demo (VGG13-BN at 1/4 width), vgg13bn (Network Slimming variant), vgg13bn-source (the source "
             "work's 4096-wide 1x1-conv classifier), resnet20, resnet56, resnet18 (CIFAR ResNets), mobilenet-v1, "
             "mobilenet-v2",
             example::any_model_names);
    f.size("--epochs", o.epochs, "epochs in all (default 3 for demo, 1 otherwise)", 1, 100000)->default_str("");
    f.size("--batch", o.batch, "images per step", 2, 4096, "at least 2 for batch norm, at most 4096 (memory)");
    f.real("--lr", o.lr, "base learning rate (SGD, momentum 0.9, Nesterov)", 0, 1e30);
    f.real("--weight-decay", o.weight_decay, "weight decay", 0, 1);
    f.choice("--schedule", o.schedule, "learning-rate schedule", {"cosine", "restarts", "step", "constant"});
    f.toggle("--augment", o.augment, "random crop (padding 4) and horizontal flip");
    f.real("--sparsity", o.sparsity, "L1 penalty on BatchNorm gammas (sparsity training)", 0, 1);
    f.threads(o.threads, "threads (default: all cores)");
    f.choice("--precision", o.precision,
             "convolutions and linear layers in fp32, or bf16 operands with fp32 sums and fp32 weights "
             "(AMX or AVX512-BF16 where the CPU has them)",
             {"fp32", "bf16"});
    f.u64("--seed", o.seed, "initial weights, shuffling and dropout", 0, std::numeric_limits<std::int64_t>::max());
    f.text("--data", o.data, "Fashion-MNIST IDX files");
    f.size("--validation", o.validation,
           "training images held out for validation, drawn by --seed before --limit applies (0: none)", 0, 50000);
    f.size("--limit", o.limit, "train on the first N of the remaining images only (0: all)", 0, 1u << 30);
    f.size("--test-limit", o.test_limit, "test on the first N images only (0: all)", 0, 1u << 30);
    f.output("--checkpoint", o.checkpoint, "save after every epoch; resume from it when it exists");
    f.output("--json", o.json, "write the results as JSON");
    f.parse(argc, argv);
    if (!f.given("--epochs")) o.epochs = o.model == "demo" ? 3 : 1;
    o.settings = f.settings(may_change_on_resume);
    return o;
}

sgp::lr_schedule schedule(const options& o) {
    if (o.schedule == "cosine") return sgp::schedules::cosine{static_cast<double>(o.epochs), 0.f};
    if (o.schedule == "restarts") return sgp::schedules::cosine_restarts{50, 1, 1e-5f};
    if (o.schedule == "step") return sgp::schedules::step{std::max<int>(1, static_cast<int>(o.epochs) / 3), 0.1f};
    if (o.schedule == "constant") return sgp::schedules::constant{};
    throw sgp::error("--schedule: unknown schedule '" + o.schedule + "' (cosine, restarts, step, constant)");
}

template <class Net>
int run(const options& o) {
    const auto t0 = std::chrono::steady_clock::now();
    auto all = sgp::load_fashion_mnist(o.data, true);
    std::optional<sgp::train_validation> split;
    if (o.validation > 0) split = sgp::hold_out(all, o.validation, o.seed);
    const auto train_set = (split ? split->train : all).head(o.limit);
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.test_limit);
    auto lo = example::fashion_mnist_options(o.batch, o.seed, Net::input_shape.h);
    if (o.augment) {
        lo.crop_padding = 4;
        lo.flip = true;
    }
    sgp::batch_loader train(train_set, lo);
    sgp::batch_loader test(test_set, example::for_evaluation(lo));
    std::optional<sgp::validation_loader> validation;
    if (split) validation.emplace(split->validation, example::for_evaluation(lo));

    sgp::trainer<Net> t{
        sgp::sgd{.lr = o.lr, .momentum = 0.9f, .weight_decay = o.weight_decay, .nesterov = true},
        {.threads = o.threads, .seed = o.seed, .precision = sgp::parse_precision(o.precision, "--precision")}};
    const std::string settings = example::settings_json(o.settings);
    if (!o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
        const auto a = t.load_checkpoint(o.checkpoint);
        // A checkpoint without settings predates their recording: it is taken as it is.
        if (const auto recorded = sgp::text_of(a, "run.settings", o.checkpoint); !recorded.empty())
            example::require_same_settings(example::settings_of(sgp::parse_json(recorded, o.checkpoint), o.checkpoint),
                                           o.settings, o.checkpoint);
        else if (t.epochs_done() > 0 && a.count("trainer.seed") &&
                 static_cast<std::uint64_t>(a.at("trainer.seed").to_int64(o.checkpoint)) != o.seed)
            sgp::fail(o.checkpoint, "this run was started with --seed " +
                                        std::to_string(a.at("trainer.seed").to_int64(o.checkpoint)) + " (now " +
                                        std::to_string(o.seed) + "); resume it with the same settings");
        std::cerr << "resumed from " << o.checkpoint << " after epoch " << t.epochs_done() << "\n";
    }
    std::cerr << "model " << o.model << ": " << Net::parameter_count << " parameters, " << Net::macs
              << " multiply-adds per image; " << train_set.size() << " training images, " << o.threads << " threads, "
              << sgp::simd::arch_name << "\n";
    sgp::fit_options f;
    f.epochs = o.epochs;
    f.sparsity = o.sparsity;
    f.schedule = schedule(o);
    f.checkpoint = o.checkpoint;
    f.checkpoint_extra["run.settings"] = sgp::text_entry(settings);
    const auto reports = t.fit(train, f, validation ? &*validation : nullptr);
    const auto final_eval = t.evaluate(test);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double images = 0, train_seconds = 0;
    for (const auto& r : reports) {
        images += r.images_per_second * r.seconds;
        train_seconds += r.seconds;
    }
    std::printf("test accuracy %.2f %% after %zu epochs, %.1f images/s training, %.0f s in all\n",
                100 * final_eval.accuracy, t.epochs_done(), train_seconds > 0 ? images / train_seconds : 0.0, seconds);
    if (!o.json.empty()) {
        sgp::json_writer j;
        j.begin_object()
            .field("model", o.model)
            .field("cpu", sgp::cpu_model())
            .field("parameters", Net::parameter_count)
            .field("macs", Net::macs)
            .field("epochs", t.epochs_done())
            .field("test_accuracy", final_eval.accuracy)
            .field("test_loss", final_eval.loss)
            .field("train_images_per_second", train_seconds > 0 ? images / train_seconds : 0.0)
            .field("seconds", seconds)
            .field("threads", o.threads)
            .field("batch", o.batch)
            .field("lr", static_cast<double>(o.lr))
            .field("seed", static_cast<long long>(o.seed))
            .field("train_images", train_set.size())
            .field("validation_images", o.validation)
            .field("simd", sgp::simd::arch_name)
            .field("precision", o.precision)
            .field("bf16_kernel", o.precision == "bf16"
                                      ? std::string(sgp::kernels::name_of(sgp::kernels::bf16_kernel_in_use()))
                                      : std::string());
        j.key("history").begin_array();
        for (const auto& r : reports)
            j.begin_object()
                .field("epoch", r.epoch)
                .field("loss", r.loss)
                .field("train_accuracy", r.train_accuracy)
                .field("validation_accuracy", r.validation_accuracy)
                .field("images_per_second", r.images_per_second)
                .field("seconds", r.seconds)
                .end_object();
        j.end_array().end_object();
        j.save(o.json);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return example::guarded([&] {
        const options o = parse(argc, argv);
        return example::with_any_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
