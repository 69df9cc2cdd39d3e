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
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/finite.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/data/loader.hpp"
#include "sgp/data/split.hpp"
#include "sgp/io/state_dict.hpp"
#include "sgp/train/loss.hpp"
#include "sgp/train/schedule.hpp"
#include "sgp/train/sgd.hpp"
#include "sgp/train/stopping.hpp"

namespace sgp {

struct trainer_options {
    std::size_t threads = 1;
    std::uint64_t seed = 1;  // initial weights and dropout masks
    // Convolutions and linear layers in fp32 or in bf16 with fp32 sums (core/precision.hpp),
    // in training and in evaluate().
    sgp::precision precision = sgp::precision::fp32;
};

struct fit_options {
    std::size_t epochs = 1;  // train until this many epochs are done in total (resume-aware); with `stop`, a cap
    float sparsity = 0.f;    // lambda of the L1 penalty on BatchNorm gammas (0: off)
    lr_schedule schedule = schedules::constant{};
    std::string checkpoint{};         // written atomically after every epoch when not empty
    std::ostream* log = &std::cerr;   // one progress line per epoch; null for silence
    double progress_seconds = 60;     // within a long epoch, a progress line this often (0: never)
    std::size_t schedule_origin = 0;  // the schedule sees epoch - schedule_origin (e.g. per fine-tuning round)
    npz_archive checkpoint_extra{};   // the caller's own entries, saved in every checkpoint (see save_checkpoint)
    // Stop earlier on a plateau of validation accuracy (train/stopping.hpp); needs fit's
    // validation loader.
    std::optional<stopping_rule> stop{};
};

// Text (a program's settings, a JSON report) as a checkpoint entry: a 1-d uint8 array.
inline npy_array text_entry(std::string_view text) {
    return npy_array{"|u1", {text.size()}, std::string(text)};
}
// The text entry `key` of a checkpoint, or "" when there is none.
inline std::string text_of(const npz_archive& a, const std::string& key, const std::string& where) {
    const auto it = a.find(key);
    if (it == a.end()) return {};
    const auto& v = it->second;
    if (v.dtype != "|u1" || v.shape.size() != 1 || v.data.size() != v.shape[0])
        fail(where, "'" + key + "' is not text (a 1-d uint8 array)");
    return v.data;
}

struct evaluation {
    double loss = 0, accuracy = 0;
    std::size_t images = 0;
};

struct epoch_report {
    std::size_t epoch = 0;  // 1-based
    float lr = 0;
    double loss = 0, train_accuracy = 0, validation_accuracy = -1, images_per_second = 0, seconds = 0;
    bool best = false;  // under a stopping rule: the best validation accuracy so far
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
        net_.for_each_node([&](std::size_t, auto& l) {
            if constexpr (has_channel_scale_v<std::remove_cvref_t<decltype(l)>>) {
                const float* g = l.gamma();
                float* d = l.gamma_grad();
                for (std::size_t c = 0, n = l.out_channels(); c < n; ++c) d[c] += lambda * ((g[c] > 0) - (g[c] < 0));
            }
        });
    }

    // One SGD step on the n images already in the network's input buffer. A diverging step
    // (a non-finite loss, batch statistics or updated parameter) fails naming the epoch, the
    // step and, where known, the layer, before anything non-finite can reach a checkpoint.
    loss_result train_step(const int* labels, std::size_t n, float lr, float sparsity = 0.f) {
        const std::size_t k = Net::output_shape.c;
        dlogits_.reserve(k * n);
        loss_result r;
        try {
            const float* out = net_.forward(n, context(true));
            r = softmax_cross_entropy(out, labels, net_.widths().back(), n, dlogits_.data());
            if (!std::isfinite(r.loss)) fail("training", "the loss is " + std::to_string(r.loss));
            net_.backward(dlogits_.data(), context(true));
        } catch (const error& e) {
            throw error(std::string(e.what()) + " " + position(lr));
        }
        if (sparsity != 0.f) add_sparsity_gradient(sparsity);
        for (auto& h : hooks_) h(net_);
        net_.for_each_tensor([&](const std::string& key, const tensor_ref& t) {
            if (t.role != tensor_role::parameter) return;
            if (!state_.step(opt_, lr, key, t))
                fail("training", "the update made '" + key + "' non-finite (" + first_non_finite(t.value, t.size()) +
                                     ") " + position(lr));
        });
        ++step_;
        return r;
    }

    // Trains until f.epochs epochs are done in total, or earlier under f.stop. `validation`
    // (held out of the training images, data/split.hpp) is evaluated after every epoch: it
    // shows progress, and it is what the stopping rule decides on.
    std::vector<epoch_report> fit(batch_loader& train, const fit_options& f, validation_loader* validation = nullptr) {
        // A loader of another image size would overrun the network's input buffer.
        train.check_network(Net::input_shape, Net::output_shape.size(), "the network");
        if (validation) validation->check_network(Net::input_shape, Net::output_shape.size(), "the network");
        if (f.stop) {
            f.stop->check("fit");
            if (!validation) fail("fit", "a stopping rule decides on validation accuracy: give a validation loader");
        }
        start_stopping(f);
        std::vector<epoch_report> reports;
        net_.reserve(train.options().batch);
        std::vector<int> labels(train.options().batch);
        const auto start = std::chrono::steady_clock::now();
        const std::size_t first = epoch_;
        while (epoch_ < f.epochs && !(f.stop && stop_.stopped)) {
            const auto t0 = std::chrono::steady_clock::now();
            train.start_epoch(epoch_);
            double loss = 0;
            std::size_t correct = 0, seen = 0, b = 0;
            const double nb = static_cast<double>(train.batches());
            const float scale = f.stop ? stop_.lr_scale(*f.stop) : 1.f;
            float lr = 0;
            auto last_line = t0;
            for (std::size_t n; (n = train.next(net_.input_buffer(), labels.data())) > 0; ++b) {
                step_in_epoch_ = b + 1;
                batches_in_epoch_ = train.batches();
                const double at =
                    static_cast<double>(epoch_ - std::min(epoch_, f.schedule_origin)) + static_cast<double>(b) / nb;
                lr = learning_rate(f.schedule, at, opt_.lr) * scale;
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
            if (validation) {
                const auto e = evaluate(*validation);
                // Weights that grew huge but stay finite show here first (the last step's
                // update is never seen by a training forward).
                if (!std::isfinite(e.loss))
                    fail("training", "the validation loss is " + std::to_string(e.loss) + " after epoch " +
                                         std::to_string(epoch_) + " (learning rate " + general(lr) +
                                         "): training diverged; lower the learning rate");
                rep.validation_accuracy = e.accuracy;
            }
            if (f.stop) {
                rep.best = stop_.observe(*f.stop, rep.validation_accuracy, epoch_);
                if (rep.best && f.stop->restore_best) {
                    if (best_)
                        *best_ = net_;
                    else
                        best_ = std::make_unique<Net>(net_);
                }
            }
            if (!f.checkpoint.empty()) save_checkpoint(f.checkpoint, f.checkpoint_extra);
            if (f.log) {
                const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                const double left =
                    elapsed / static_cast<double>(epoch_ - first) * static_cast<double>(f.epochs - epoch_);
                char line[320];
                std::snprintf(
                    line, sizeof line,
                    "epoch %zu/%zu  lr %.4g  loss %.4f  train %.2f %%%s%s  %.0f img/s  %.0f s  left %s%s\n", epoch_,
                    f.epochs, static_cast<double>(lr), rep.loss, 100 * rep.train_accuracy,
                    validation ? ("  validation " + fixed2(100 * rep.validation_accuracy) + " %").c_str() : "",
                    rep.best ? " (best)" : "", rep.images_per_second, rep.seconds,
                    f.stop ? ("at most " + duration(left)).c_str() : duration(left).c_str(),
                    f.stop && stop_.stopped ? "; stopped: no progress after the last rate cut" : "");
                *f.log << line << std::flush;
            }
            reports.push_back(rep);
        }
        if (f.stop && !stop_.finished && (stop_.stopped || epoch_ >= f.epochs)) {
            // The run is over: the best epoch's weights replace the last (the trainer's position,
            // epochs and steps done, is unchanged), and the checkpoint then holds the result.
            if (f.stop->restore_best && best_ && stop_.best_epoch != epoch_) {
                if (best_->class_widths() != net_.class_widths())
                    fail("fit", "the best epoch's network has other widths than the trained one (pruned in between?)");
                net_ = *best_;
                if (f.log)
                    *f.log << "kept epoch " << stop_.best_epoch << "'s weights (validation " << fixed2(100 * stop_.best)
                           << " %)\n";
            }
            stop_.finished = true;
            best_.reset();
            if (!f.checkpoint.empty()) save_checkpoint(f.checkpoint, f.checkpoint_extra);
        }
        return reports;
    }

    // The stopping rule's state of the last fit (or of the checkpoint loaded).
    const stopping_state& stopping() const { return stop_; }
    // Forgets it: the next fit under a rule starts afresh even at the same schedule origin (after
    // re-initialising the weights, say).
    void reset_stopping() {
        stop_ = stopping_state{};
        stop_active_ = false;
        best_.reset();
    }

    evaluation evaluate(batch_loader& data) {
        data.check_network(Net::input_shape, Net::output_shape.size(), "the network");
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
    // position, in one atomically written .npz; `extra` adds a caller's own entries (a
    // pruning round's number and report), written in the same file so that they can never
    // disagree with the weights. A network with a NaN or Inf is refused, naming the tensor.
    void save_checkpoint(const std::string& path, const npz_archive& extra = {}) {
        require_finite(net_, path, "not saved: training diverged; lower the learning rate");
        npz_archive a = extra;
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
        if (stop_active_) {
            a["trainer.stop"] = text_entry(stop_.to_json());
            if (best_) add_state_dict(*best_, a, "trainer.best.");
        }
        save_npz(path, a);
    }

    // Loads a checkpoint written by save_checkpoint and returns the whole archive (for the
    // caller's own entries). Every field is range-checked and every tensor must be finite.
    npz_archive load_checkpoint(const std::string& path) {
        auto a = load_npz(path);
        load_checkpoint(a, path);
        return a;
    }
    // The same from an archive already read (`path` names it in messages).
    void load_checkpoint(const npz_archive& a, const std::string& path) {
        read_state_dict(net_, a, path);
        require_finite(net_, path, "the checkpoint of a diverged run; start afresh with a lower learning rate");
        auto integer = [&](const std::string& key, std::int64_t most) {
            const auto it = a.find(key);
            if (it == a.end()) fail(path, "no '" + key + "': a weights file, not a training checkpoint");
            const auto v = it->second.to_int64(path + ":" + key);
            if (v < 0 || v > most)
                fail(path, "'" + key + "' is " + std::to_string(v) + ", outside 0 to " + std::to_string(most));
            return v;
        };
        epoch_ = static_cast<std::size_t>(integer("trainer.epoch", max_epochs));
        step_ = static_cast<std::uint64_t>(integer("trainer.step", std::int64_t{1} << 53));
        o_.seed = static_cast<std::uint64_t>(integer("trainer.seed", std::numeric_limits<std::int64_t>::max()));
        state_.clear();
        net_.for_each_tensor([&](const std::string& key, const tensor_ref& t) {
            const auto it = a.find("optimizer." + key + ".momentum_buffer");
            if (it == a.end()) return;
            if (it->second.shape != t.dims)
                fail(path, "momentum buffer of '" + key + "' has shape " + shape_string(it->second.shape) +
                               ", the parameter " + shape_string(t.dims));
            const auto v = it->second.to_floats(path);
            if (v.size() != t.size() || !all_finite(v.data(), v.size()))
                fail(path, "momentum buffer of '" + key + "' is not " + std::to_string(t.size()) + " finite values");
            auto& buf = state_.buffers()[key];
            buf.resize(t.size());
            std::copy(v.begin(), v.end(), buf.data());
        });
        best_.reset();
        stop_active_ = false;
        if (const auto text = text_of(a, "trainer.stop", path); !text.empty()) {
            stop_ = stopping_state::from_json(text, path + ":trainer.stop");
            if (stop_.best_epoch > static_cast<std::size_t>(epoch_) || stop_.stopped_at > epoch_)
                fail(path, "the stopping rule's epochs lie beyond the checkpoint's " + std::to_string(epoch_));
            stop_active_ = true;
            const bool has_best =
                std::any_of(a.begin(), a.end(), [](const auto& kv) { return kv.first.rfind("trainer.best.", 0) == 0; });
            if (stop_.best_epoch > 0 && !stop_.finished && has_best) {
                best_ = std::make_unique<Net>(net_);
                read_state_dict(*best_, a, path, "trainer.best.");
                require_finite(*best_, path, "its best epoch's weights are not finite");
            }
        }
    }

    // The most epochs a checkpoint may claim (a guard against corrupt or edited files).
    static constexpr std::int64_t max_epochs = 1'000'000;

    run_context context(bool training) {
        run_context cx;
        cx.pool = &pool_;
        cx.training = training;
        cx.seed = o_.seed;
        cx.step = step_;
        cx.precision = o_.precision;
        return cx;
    }

private:
    // A fit under a stopping rule continues the state of the checkpoint it resumes (the same
    // schedule origin); any other fit starts afresh.
    void start_stopping(const fit_options& f) {
        if (!f.stop) {
            stop_active_ = false;
            best_.reset();
            return;
        }
        if (stop_active_ && stop_.origin == f.schedule_origin && stop_.parameters == net_.active_parameter_count()) {
            // A finished run given a later cap continues from its kept weights, still the best.
            if (stop_.finished && !stop_.stopped && epoch_ < f.epochs) {
                stop_.finished = false;
                best_ = std::make_unique<Net>(net_);
            }
            return;
        }
        stop_ = stopping_state{};
        stop_.origin = f.schedule_origin;
        stop_.parameters = net_.active_parameter_count();
        best_.reset();
        stop_active_ = true;
    }

    // "at epoch 3, step 17 of 94 (learning rate 0.05): training diverged; lower the learning rate"
    std::string position(float lr) const {
        return "at epoch " + std::to_string(epoch_ + 1) + ", step " + std::to_string(step_in_epoch_) + " of " +
               std::to_string(batches_in_epoch_) + " (learning rate " + general(lr) +
               "): training diverged; lower the learning rate";
    }
    static std::string general(double v) {
        char b[32];
        std::snprintf(b, sizeof b, "%g", v);
        return b;
    }
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
    stopping_state stop_{};
    bool stop_active_ = false;                              // stop_ belongs to the current (or checkpointed) fit
    std::unique_ptr<Net> best_;                             // the best epoch's network under the stopping rule
    std::size_t step_in_epoch_ = 0, batches_in_epoch_ = 0;  // for messages: train_step's place in fit
};

}  // namespace sgp
