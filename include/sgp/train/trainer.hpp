#pragma once
// The training loop: forward, softmax cross-entropy, backward, gradient hooks (where
// sparsity training adds lambda * sign(gamma) to BatchNorm gamma gradients), SGD step with
// a learning-rate schedule; evaluation; atomic checkpoints that resume bit-identically.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/data/loader.hpp"
#include "sgp/io/state_dict.hpp"
#include "sgp/train/loss.hpp"
#include "sgp/train/schedule.hpp"
#include "sgp/train/sgd.hpp"

namespace sgp {

struct trainer_options {
    std::size_t threads = 1;
    std::uint64_t seed = 1;  // initial weights and dropout masks
};

struct fit_options {
    std::size_t epochs = 1;  // train until this many epochs are done in total (resume-aware)
    float sparsity = 0.f;    // lambda of the L1 penalty on BatchNorm gammas (0: off)
    lr_schedule schedule = schedules::constant{};
    std::string checkpoint{};         // written atomically after every epoch when not empty
    std::ostream* log = &std::cerr;   // one progress line per epoch; null for silence
    double progress_seconds = 60;     // within a long epoch, a progress line this often (0: never)
    std::size_t schedule_origin = 0;  // the schedule sees epoch - schedule_origin (e.g. per fine-tuning round)
};

struct evaluation {
    double loss = 0, accuracy = 0;
    std::size_t images = 0;
};

struct epoch_report {
    std::size_t epoch = 0;  // 1-based
    float lr = 0;
    double loss = 0, train_accuracy = 0, test_accuracy = -1, images_per_second = 0, seconds = 0;
};

template <class Net>
class trainer {
    static_assert(Net::output_shape.h == 1 && Net::output_shape.w == 1,
                  "trainer: the network must end in a vector of class scores (C x 1 x 1); end it with flatten + linear "
                  "or a global pool");

public:
    using gradient_hook = std::function<void(Net&)>;

    explicit trainer(sgd opt = {}, trainer_options o = {}) : opt_(opt), o_(o), pool_(o.threads), net_(o.seed) {}

    Net& net() { return net_; }
    thread_pool& pool() { return pool_; }
    sgd& optimizer() { return opt_; }
    sgd_state& optimizer_state() { return state_; }
    std::size_t epochs_done() const { return epoch_; }

    // Called after every backward pass, before the SGD step.
    void add_gradient_hook(gradient_hook h) { hooks_.push_back(std::move(h)); }

    // Adds lambda * sign(gamma) to every BatchNorm gamma gradient (Network Slimming's L1 subgradient).
    void add_sparsity_gradient(float lambda) {
        net_.for_each_layer([&](std::size_t, auto& l) {
            if constexpr (requires { l.gamma_grad(); }) {
                const float* g = l.gamma();
                float* d = l.gamma_grad();
                for (std::size_t c = 0, n = l.out_channels(); c < n; ++c) d[c] += lambda * ((g[c] > 0) - (g[c] < 0));
            }
        });
    }

    // One SGD step on the n images already in the network's input buffer.
    loss_result train_step(const int* labels, std::size_t n, float lr, float sparsity = 0.f) {
        const float* out = net_.forward(n, context(true));
        const std::size_t k = Net::output_shape.c;
        dlogits_.reserve(k * n);
        const auto r = softmax_cross_entropy(out, labels, net_.widths().back(), n, dlogits_.data());
        if (!std::isfinite(r.loss))
            fail("training", "the loss is " + std::to_string(r.loss) + " at epoch " + std::to_string(epoch_ + 1) +
                                 ", step " + std::to_string(step_) + " (learning rate " + std::to_string(lr) +
                                 "): training diverged; lower the learning rate");
        net_.backward(dlogits_.data(), context(true));
        if (sparsity != 0.f) add_sparsity_gradient(sparsity);
        for (auto& h : hooks_) h(net_);
        net_.for_each_tensor([&](const std::string& key, const tensor_ref& t) {
            if (t.role == tensor_role::parameter) state_.step(opt_, lr, key, t);
        });
        ++step_;
        return r;
    }

    std::vector<epoch_report> fit(batch_loader& train, const fit_options& f, batch_loader* test = nullptr) {
        std::vector<epoch_report> reports;
        net_.reserve(train.options().batch);
        std::vector<int> labels(train.options().batch);
        const auto start = std::chrono::steady_clock::now();
        const std::size_t first = epoch_;
        while (epoch_ < f.epochs) {
            const auto t0 = std::chrono::steady_clock::now();
            train.start_epoch(epoch_);
            double loss = 0;
            std::size_t correct = 0, seen = 0, b = 0;
            const double nb = static_cast<double>(train.batches());
            float lr = 0;
            auto last_line = t0;
            for (std::size_t n; (n = train.next(net_.input_buffer(), labels.data())) > 0; ++b) {
                const double at =
                    static_cast<double>(epoch_ - std::min(epoch_, f.schedule_origin)) + static_cast<double>(b) / nb;
                lr = learning_rate(f.schedule, at, opt_.lr);
                const auto r = train_step(labels.data(), n, lr, f.sparsity);
                loss += r.loss * static_cast<double>(n);
                correct += r.correct;
                seen += n;
                const auto now = std::chrono::steady_clock::now();
                if (f.log && f.progress_seconds > 0 &&
                    std::chrono::duration<double>(now - last_line).count() >= f.progress_seconds) {
                    last_line = now;
                    const double sec = std::chrono::duration<double>(now - t0).count();
                    char line[160];
                    std::snprintf(
                        line, sizeof line, "  epoch %zu: %zu/%zu images  loss %.4f  %.0f img/s  epoch left %s\n",
                        epoch_ + 1, seen, train.size(), loss / static_cast<double>(seen),
                        static_cast<double>(seen) / sec,
                        duration(sec / static_cast<double>(seen) * static_cast<double>(train.size() - seen)).c_str());
                    *f.log << line << std::flush;
                }
            }
            ++epoch_;
            epoch_report rep;
            rep.epoch = epoch_;
            rep.lr = lr;
            rep.loss = loss / static_cast<double>(seen);
            rep.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
            rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            rep.images_per_second = static_cast<double>(seen) / rep.seconds;
            if (test) rep.test_accuracy = evaluate(*test).accuracy;
            if (!f.checkpoint.empty()) save_checkpoint(f.checkpoint);
            if (f.log) {
                const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                const double left =
                    elapsed / static_cast<double>(epoch_ - first) * static_cast<double>(f.epochs - epoch_);
                char line[256];
                std::snprintf(line, sizeof line,
                              "epoch %zu/%zu  lr %.4g  loss %.4f  train %.2f %%%s  %.0f img/s  %.0f s  left %s\n",
                              epoch_, f.epochs, static_cast<double>(lr), rep.loss, 100 * rep.train_accuracy,
                              test ? ("  test " + fixed2(100 * rep.test_accuracy) + " %").c_str() : "",
                              rep.images_per_second, rep.seconds, duration(left).c_str());
                *f.log << line << std::flush;
            }
            reports.push_back(rep);
        }
        return reports;
    }

    evaluation evaluate(batch_loader& data) {
        net_.reserve(data.options().batch);
        std::vector<int> labels(data.options().batch);
        data.start_epoch(0);
        evaluation e;
        double loss = 0;
        std::size_t correct = 0;
        for (std::size_t n; (n = data.next(net_.input_buffer(), labels.data())) > 0;) {
            const auto r =
                softmax_cross_entropy(net_.forward(n, context(false)), labels.data(), net_.widths().back(), n, nullptr);
            loss += r.loss * static_cast<double>(n);
            correct += r.correct;
            e.images += n;
        }
        e.loss = loss / static_cast<double>(e.images);
        e.accuracy = static_cast<double>(correct) / static_cast<double>(e.images);
        return e;
    }

    // Weights (state_dict keys, loadable by PyTorch), momentum buffers and the loop's
    // position, in one atomically written .npz.
    void save_checkpoint(const std::string& path) {
        npz_archive a;
        add_state_dict(net_, a);
        net_.for_each_tensor([&](const std::string& key, const tensor_ref& t) {
            const auto it = state_.buffers().find(key);
            // A buffer of another size is stale (its tensor was pruned since): the next step
            // restarts it, so it is not saved.
            if (it == state_.buffers().end() || it->second.size() != t.size()) return;
            a["optimizer." + key + ".momentum_buffer"] = npy_array::from_floats(it->second.data(), t.dims);
        });
        a["trainer.epoch"] = npy_array::from_int64(static_cast<std::int64_t>(epoch_));
        a["trainer.step"] = npy_array::from_int64(static_cast<std::int64_t>(step_));
        a["trainer.seed"] = npy_array::from_int64(static_cast<std::int64_t>(o_.seed));
        save_npz(path, a);
    }

    void load_checkpoint(const std::string& path) {
        const auto a = load_npz(path);
        read_state_dict(net_, a, path);
        auto integer = [&](const std::string& key) {
            const auto it = a.find(key);
            if (it == a.end()) fail(path, "no '" + key + "': a weights file, not a training checkpoint");
            return it->second.to_int64(path + ":" + key);
        };
        epoch_ = static_cast<std::size_t>(integer("trainer.epoch"));
        step_ = static_cast<std::uint64_t>(integer("trainer.step"));
        o_.seed = static_cast<std::uint64_t>(integer("trainer.seed"));
        state_.clear();
        net_.for_each_tensor([&](const std::string& key, const tensor_ref& t) {
            const auto it = a.find("optimizer." + key + ".momentum_buffer");
            if (it == a.end()) return;
            if (it->second.shape != t.dims)
                fail(path, "momentum buffer of '" + key + "' has shape " + shape_string(it->second.shape) +
                               ", the parameter " + shape_string(t.dims));
            const auto v = it->second.to_floats(path);
            auto& buf = state_.buffers()[key];
            buf.resize(t.size());
            std::copy(v.begin(), v.end(), buf.data());
        });
    }

    run_context context(bool training) {
        run_context cx;
        cx.pool = &pool_;
        cx.training = training;
        cx.seed = o_.seed;
        cx.step = step_;
        return cx;
    }

private:
    static std::string fixed2(double v) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f", v);
        return b;
    }
    static std::string duration(double s) {
        char b[32];
        const long t = std::lround(s);
        if (t >= 3600)
            std::snprintf(b, sizeof b, "%ldh%02ldm", t / 3600, t / 60 % 60);
        else
            std::snprintf(b, sizeof b, "%ldm%02lds", t / 60, t % 60);
        return b;
    }

    sgd opt_;
    trainer_options o_;
    thread_pool pool_;
    Net net_;
    sgd_state state_;
    std::vector<gradient_hook> hooks_;
    aligned_buffer<float> dlogits_;
    std::size_t epoch_ = 0;
    std::uint64_t step_ = 0;
};

}  // namespace sgp
