// The main job: trains a VGG on Fashion-MNIST (padded to 32x32) and reports test accuracy
// and throughput. Usage: train_fashion_mnist --help
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sgp/sgp.hpp>
#include <string>
#include <thread>

#include "example_cli.hpp"

namespace {

struct options {
    std::string model = "demo", data = sgp::fashion_mnist_default_dir, checkpoint, json, schedule = "cosine";
    std::size_t epochs = 0, batch = 64, threads = std::max(1u, std::thread::hardware_concurrency()), limit = 0,
                test_limit = 0;
    std::uint64_t seed = 1;
    float lr = 0.05f, weight_decay = 1e-4f, sparsity = 0.f;
    bool augment = false;
};

const char* usage =
    "train_fashion_mnist [options]\n"
    "  --model NAME       demo (VGG13-BN at 1/4 width, default), vgg13bn (Network Slimming variant),\n"
    "                     vgg13bn-source (the source work's 4096-wide 1x1-conv classifier)\n"
    "  --epochs N         default 3 for demo, 1 otherwise\n"
    "  --batch N          default 64\n"
    "  --lr X             base learning rate, default 0.05 (SGD, momentum 0.9, Nesterov)\n"
    "  --weight-decay X   default 1e-4\n"
    "  --schedule NAME    cosine (default), restarts, step, constant\n"
    "  --augment          random crop (padding 4) and horizontal flip\n"
    "  --sparsity X       L1 penalty on BatchNorm gammas (sparsity training), default 0\n"
    "  --threads N        default: all cores\n"
    "  --seed N           default 1\n"
    "  --data DIR         Fashion-MNIST IDX files, default /usr/share/datasets/fashion-mnist\n"
    "  --limit N          train on the first N images only; --test-limit N likewise\n"
    "  --checkpoint FILE  save after every epoch; resume from it when it exists\n"
    "  --json FILE        write the results as JSON\n";

options parse(int argc, char** argv) {
    options o;
    example::flags f(usage);
    f.text("--model", o.model);
    f.size("--epochs", o.epochs);
    f.size("--batch", o.batch);
    f.real("--lr", o.lr);
    f.real("--weight-decay", o.weight_decay);
    f.text("--schedule", o.schedule);
    f.toggle("--augment", o.augment);
    f.real("--sparsity", o.sparsity);
    f.size("--threads", o.threads);
    f.u64("--seed", o.seed);
    f.text("--data", o.data);
    f.size("--limit", o.limit);
    f.size("--test-limit", o.test_limit);
    f.text("--checkpoint", o.checkpoint);
    f.text("--json", o.json);
    f.parse(argc, argv);
    if (o.batch < 2) throw sgp::error("--batch: batch norm needs at least 2 images per batch");
    if (o.epochs == 0) o.epochs = o.model == "demo" ? 3 : 1;
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
    const auto train_set = sgp::load_fashion_mnist(o.data, true).head(o.limit);
    const auto test_set = sgp::load_fashion_mnist(o.data, false).head(o.test_limit);
    auto lo = example::fashion_mnist_options(o.batch, o.seed, Net::input_shape.h);
    if (o.augment) {
        lo.crop_padding = 4;
        lo.flip = true;
    }
    sgp::batch_loader train(train_set, lo);
    sgp::batch_loader test(test_set, example::for_evaluation(lo));

    sgp::trainer<Net> t{sgp::sgd{.lr = o.lr, .momentum = 0.9f, .weight_decay = o.weight_decay, .nesterov = true},
                        {.threads = o.threads, .seed = o.seed}};
    if (!o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
        t.load_checkpoint(o.checkpoint);
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
    const auto reports = t.fit(train, f, &test);
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
            .field("simd", sgp::simd::arch_name);
        j.key("history").begin_array();
        for (const auto& r : reports)
            j.begin_object()
                .field("epoch", r.epoch)
                .field("loss", r.loss)
                .field("train_accuracy", r.train_accuracy)
                .field("test_accuracy", r.test_accuracy)
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
        return example::with_model(o.model, [&]<class Net>() { return run<Net>(o); });
    });
}
