// The optimizer, schedules, loss, training loop, checkpoints and resumption.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <sgp/sgp.hpp>
#include <sstream>
#include <type_traits>

#include "helpers.hpp"

using namespace sgp::layers;

using tiny = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<4>, batch_norm, relu, max_pool<2>, conv3x3<8>, batch_norm,
                             relu, global_avg_pool, flatten, dropout<0.2f>, linear<3>>;

namespace {

// Three classes of 8x8 images: a bright top half, bottom half or left half, plus noise.
sgp::dataset synthetic(std::size_t n, std::uint64_t seed) {
    sgp::dataset d;
    d.source = "synthetic";
    d.channels = 1;
    d.height = d.width = 8;
    d.classes = 3;
    sgp::rng r(seed);
    for (std::size_t i = 0; i < n; ++i) {
        const auto label = static_cast<std::uint8_t>(r.below(3));
        d.labels.push_back(label);
        for (std::size_t y = 0; y < 8; ++y)
            for (std::size_t x = 0; x < 8; ++x) {
                const bool on = label == 0 ? y < 4 : label == 1 ? y >= 4 : x < 4;
                d.images.push_back(static_cast<std::uint8_t>((on ? 150 : 40) + r.below(60)));
            }
    }
    return d;
}

sgp::loader_options loader(std::size_t batch = 16) {
    sgp::loader_options o;
    o.batch = batch;
    o.seed = 7;
    o.mean = {0.4f};
    o.std = {0.25f};
    return o;
}

}  // namespace

TEST_CASE("SGD follows PyTorch's update with momentum, Nesterov and weight decay") {
    float p[2] = {1.f, -2.f}, g[2] = {0.5f, 0.25f};
    sgp::tensor_ref t{"w", p, g, {2}, sgp::tensor_role::parameter, nullptr};
    sgp::sgd o{.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true};
    sgp::sgd_state s;
    // step 1: d = g + wd p; buf = d; p -= lr (d + m buf)
    s.step(o, o.lr, "w", t);
    const double d0 = 0.5 + 0.01 * 1.0, p1 = 1.0 - 0.1 * (d0 + 0.9 * d0);
    CHECK(p[0] == doctest::Approx(p1).epsilon(1e-6));
    // step 2 with the same gradient: buf = m buf + d
    s.step(o, o.lr, "w", t);
    const double d1 = 0.5 + 0.01 * p1, b1 = 0.9 * d0 + d1, p2 = p1 - 0.1 * (d1 + 0.9 * b1);
    CHECK(p[0] == doctest::Approx(p2).epsilon(1e-6));
    // Plain momentum (no Nesterov) uses the buffer itself.
    float q = 1.f, gq = 1.f;
    sgp::tensor_ref tq{"q", &q, &gq, {1}, sgp::tensor_role::parameter, nullptr};
    sgp::sgd plain{.lr = 0.5f, .momentum = 0.5f};
    sgp::sgd_state s2;
    s2.step(plain, plain.lr, "q", tq);
    s2.step(plain, plain.lr, "q", tq);
    CHECK(q == doctest::Approx(1.0 - 0.5 - 0.5 * 1.5));
}

TEST_CASE("learning-rate schedules follow their formulas") {
    using namespace sgp::schedules;
    CHECK(sgp::learning_rate(constant{}, 12.3, 0.1f) == doctest::Approx(0.1));
    CHECK(sgp::learning_rate(step{10, 0.5f}, 9.99, 0.1f) == doctest::Approx(0.1));
    CHECK(sgp::learning_rate(step{10, 0.5f}, 25, 0.1f) == doctest::Approx(0.025));
    CHECK(sgp::learning_rate(cosine{10, 0.f}, 0, 0.1f) == doctest::Approx(0.1));
    CHECK(sgp::learning_rate(cosine{10, 0.f}, 5, 0.1f) == doctest::Approx(0.05));
    CHECK(sgp::learning_rate(cosine{10, 0.01f}, 10, 0.1f) == doctest::Approx(0.01));
    // Warm restarts: back to the base rate at every period start.
    const cosine_restarts r{50, 1, 1e-5f};
    CHECK(sgp::learning_rate(r, 0, 0.01f) == doctest::Approx(0.01));
    CHECK(sgp::learning_rate(r, 25, 0.01f) == doctest::Approx(1e-5 + (0.01 - 1e-5) * 0.5));
    CHECK(sgp::learning_rate(r, 50, 0.01f) == doctest::Approx(0.01));
    // Growing periods: 10, then 20 (restart at 10 and at 30).
    const cosine_restarts g{10, 2, 0.f};
    CHECK(sgp::learning_rate(g, 10, 1.f) == doctest::Approx(1.0));
    CHECK(sgp::learning_rate(g, 20, 1.f) == doctest::Approx(0.5));
    CHECK(sgp::learning_rate(g, 30, 1.f) == doctest::Approx(1.0));
}

TEST_CASE("softmax cross-entropy: value, gradient, accuracy and large logits") {
    // Two classes, two images, class-major logits [K][N].
    const float logits[4] = {2.f, 0.f, 1.f, 3.f};
    const int labels[2] = {0, 0};
    float d[4];
    const auto r = sgp::softmax_cross_entropy(logits, labels, 2, 2, d);
    const double l0 = std::log(1 + std::exp(-1.0)), l1 = std::log(1 + std::exp(3.0));
    CHECK(r.loss == doctest::Approx((l0 + l1) / 2));
    CHECK(r.correct == 1);
    CHECK(d[0] + d[2] == doctest::Approx(0).epsilon(1e-7));  // each column's gradient sums to 0
    CHECK(d[0] == doctest::Approx((1 / (1 + std::exp(-1.0)) - 1) / 2));
    const float big[2] = {1000.f, -1000.f};
    const int one[1] = {1};
    CHECK(sgp::softmax_cross_entropy(big, one, 2, 1, nullptr).loss == doctest::Approx(2000));
}

TEST_CASE("the trainer refuses a loader whose images are not the network's input") {
    // 8x8 images padded by 2 on each side make 12x12: fed to an 8x8 network they would
    // overrun its input buffer (the heap overflow of 28x28-vs-32x32 data).
    const auto train_set = synthetic(32, 1);
    auto padded = loader();
    padded.pad = 2;
    sgp::batch_loader wrong(train_set, padded), right(train_set, loader());
    sgp::trainer<tiny> t{sgp::sgd{.lr = 0.05f}, {.threads = 1}};
    sgp::fit_options f;
    f.epochs = 1;
    CHECK_THROWS_WITH_AS(t.fit(wrong, f), doctest::Contains("the loader makes images of"), sgp::error);
    CHECK_THROWS_WITH_AS(t.evaluate(wrong), doctest::Contains("the loader makes images of"), sgp::error);
    auto labelled = synthetic(64, 2);
    labelled.part = sgp::data_part::train;
    const auto split = sgp::hold_out(labelled, 16, 1);
    sgp::validation_loader wrong_validation(split.validation, padded);
    CHECK_THROWS_WITH_AS(t.fit(right, f, &wrong_validation), doctest::Contains("the loader makes images of"),
                         sgp::error);
    CHECK_NOTHROW(t.evaluate(right));
}

TEST_CASE("training learns a separable task") {
    auto all = synthetic(560, 1);
    all.part = sgp::data_part::train;
    const auto split = sgp::hold_out(all, 80, 1);
    const auto test_set = synthetic(150, 2);
    sgp::batch_loader train(split.train, loader()), test(test_set, loader());
    sgp::validation_loader validation(split.validation, loader());
    sgp::trainer<tiny> t{sgp::sgd{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true},
                         {.threads = 2}};
    std::ostringstream log;
    sgp::fit_options f;
    f.epochs = 6;
    f.log = &log;
    const double before = t.evaluate(test).accuracy;
    const auto reports = t.fit(train, f, &validation);
    REQUIRE(reports.size() == 6);
    CHECK(reports.back().validation_accuracy >= 0.9);
    CHECK(reports.back().loss < reports.front().loss);
    CHECK(t.evaluate(test).accuracy >= 0.9);
    CHECK(before < 0.7);
    CHECK(log.str().find("epoch 6/6") != std::string::npos);
    CHECK(log.str().find("img/s") != std::string::npos);
}

TEST_CASE("a run resumed from a checkpoint continues identically to an uninterrupted one") {
    sgp_test::temp_dir dir("resume");
    const auto data = synthetic(96, 3);
    sgp::fit_options f;
    f.log = nullptr;
    f.schedule = sgp::schedules::cosine{3, 0.f};
    const sgp::sgd opt{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true};

    sgp::batch_loader a_loader(data, loader(32));
    sgp::trainer<tiny> a{opt, {.threads = 2, .seed = 5}};
    f.epochs = 3;
    a.fit(a_loader, f);

    {
        sgp::batch_loader b_loader(data, loader(32));
        sgp::trainer<tiny> b{opt, {.threads = 2, .seed = 5}};
        f.epochs = 1;
        f.checkpoint = dir.file("ckpt.npz");
        b.fit(b_loader, f);
    }
    sgp::batch_loader c_loader(data, loader(32));
    sgp::trainer<tiny> c{opt,
                         {.threads = 1, .seed = 999}};  // seed and threads come from the checkpoint / do not matter
    c.load_checkpoint(dir.file("ckpt.npz"));
    CHECK(c.epochs_done() == 1);
    f.epochs = 3;
    f.checkpoint.clear();
    c.fit(c_loader, f);

    std::map<std::string, std::vector<float>> wa;
    a.net().for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (t.value) wa[k].assign(t.value, t.value + t.size());
    });
    std::size_t compared = 0;
    c.net().for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (!t.value) return;
        CHECK_MESSAGE(std::equal(t.value, t.value + t.size(), wa[k].begin()), k);
        ++compared;
    });
    CHECK(compared == 12);
    // No temporary file is left next to the checkpoint.
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator{}) == 1);
}

TEST_CASE("a diverging run stops with a clear error") {
    const auto data = synthetic(64, 4);
    sgp::batch_loader l(data, loader(32));
    sgp::trainer<tiny> t{sgp::sgd{.lr = 1e30f, .momentum = 0.9f}};
    sgp::fit_options f;
    f.epochs = 5;
    f.log = nullptr;
    CHECK_THROWS_WITH_AS(t.fit(l, f), doctest::Contains("training diverged"), sgp::error);
}

TEST_CASE("sparsity training adds lambda * sign(gamma) to BatchNorm gamma gradients, and hooks run") {
    sgp::trainer<tiny> t;
    auto& bn = t.net().layer<1>();
    for (std::size_t c = 0; c < 4; ++c) {
        bn.gamma()[c] = c % 2 ? 0.5f : -0.5f;
        bn.gamma_grad()[c] = 0.f;
    }
    bn.gamma()[3] = 0.f;  // sign(0) = 0
    t.add_sparsity_gradient(1e-4f);
    CHECK(bn.gamma_grad()[0] == doctest::Approx(-1e-4));
    CHECK(bn.gamma_grad()[1] == doctest::Approx(1e-4));
    CHECK(bn.gamma_grad()[3] == 0.f);

    int calls = 0;
    t.add_gradient_hook([&](tiny&) { ++calls; });
    const auto data = synthetic(32, 5);
    sgp::batch_loader l(data, loader(16));
    sgp::fit_options f;
    f.epochs = 1;
    f.log = nullptr;
    f.sparsity = 1e-4f;
    t.fit(l, f);
    CHECK(calls == 2);
}

TEST_CASE("the stopping rule: plateaus cut the rate, the plateau after the last cut stops") {
    const sgp::stopping_rule r{.patience = 2, .min_delta = 0.01, .lr_factor = 0.1f, .reductions = 1};
    sgp::stopping_state s;
    CHECK(s.observe(r, 0.50, 1));   // first: best
    CHECK(s.observe(r, 0.60, 2));   // progress
    CHECK(s.observe(r, 0.605, 3));  // better, but not by min_delta: kept as best, no progress
    CHECK(s.since == 1);
    CHECK_FALSE(s.observe(r, 0.55, 4));  // second epoch without progress: a plateau, the rate is cut
    CHECK(s.reductions == 1);
    CHECK(s.lr_scale(r) == doctest::Approx(0.1));
    CHECK(s.best_epoch == 3);
    CHECK(s.observe(r, 0.62, 5));  // progress after the cut
    CHECK_FALSE(s.observe(r, 0.61, 6));
    CHECK_FALSE(s.stopped);
    CHECK_FALSE(s.observe(r, 0.61, 7));  // the plateau after the last cut ends the run
    CHECK(s.stopped);
    CHECK(s.stopped_at == 7);
    CHECK(s.best == doctest::Approx(0.62));
    const auto back = sgp::stopping_state::from_json(s.to_json(), "state");
    CHECK(back.to_json() == s.to_json());
    auto bad = s.to_json();  // its best accuracy made 3
    const auto at = bad.find("\"best\": ") + 8;
    bad.replace(at, bad.find(',', at) - at, "3");
    CHECK_THROWS_WITH_AS(sgp::stopping_state::from_json(bad, "ckpt.npz:trainer.stop"),
                         doctest::Contains("ckpt.npz:trainer.stop: the stopping state's best accuracy is out of range"),
                         sgp::error);
    auto not_bool = s.to_json();
    not_bool.replace(not_bool.find("\"stopped\": true"), 15, "\"stopped\": 1");
    CHECK_THROWS_WITH_AS(sgp::stopping_state::from_json(not_bool, "c.npz"), doctest::Contains("'stopped' is not true"),
                         sgp::error);
    CHECK_THROWS_WITH_AS((sgp::stopping_rule{.patience = 0}.check("fit")), doctest::Contains("patience"), sgp::error);
    CHECK_THROWS_WITH_AS((sgp::stopping_rule{.lr_factor = 0.f}.check("fit")), doctest::Contains("lr_factor"),
                         sgp::error);
}

namespace {
// A validation split of synthetic data (hold_out is the only way to make one).
sgp::train_validation synthetic_split(std::size_t n, std::size_t held, std::uint64_t seed) {
    auto d = synthetic(n, seed);
    d.part = sgp::data_part::train;
    return sgp::hold_out(d, held, seed);
}
std::map<std::string, std::vector<float>> weights_of(tiny& net) {
    std::map<std::string, std::vector<float>> w;
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (t.value) w[k].assign(t.value, t.value + t.size());
    });
    return w;
}
}  // namespace

TEST_CASE("fit under a stopping rule stops on a plateau and ends with the best epoch's weights") {
    auto split = synthetic_split(640, 96, 11);
    sgp::batch_loader train(split.train, loader(16));
    sgp::validation_loader validation(split.validation, loader(32));
    sgp::trainer<tiny> t{sgp::sgd{.lr = 0.05f, .momentum = 0.9f, .nesterov = true}, {.threads = 2, .seed = 3}};
    // After four epochs the training labels turn wrong (each class taught as the next): the
    // validation accuracy falls and never progresses again, so the rule must cut the rate
    // after two epochs, stop after two more, and put the best epoch's weights back.
    std::size_t steps = 0;
    const std::size_t per_epoch = train.batches();
    t.add_gradient_hook([&](tiny&) {
        if (++steps == 4 * per_epoch)
            for (auto& l : split.train.labels) l = static_cast<std::uint8_t>((l + 1) % 3);
    });
    std::ostringstream log;
    sgp::fit_options f;
    f.epochs = 40;
    f.log = &log;
    f.stop = sgp::stopping_rule{.patience = 2, .min_delta = 0.0, .lr_factor = 0.5f, .reductions = 1};
    CHECK_THROWS_WITH_AS(t.fit(train, f), doctest::Contains("give a validation loader"), sgp::error);
    const auto reports = t.fit(train, f, &validation);
    const std::size_t best = t.stopping().best_epoch;
    CHECK(t.stopping().best > 0.85);
    CHECK(best <= 4);
    REQUIRE(reports.size() == best + 4);
    CHECK(t.stopping().stopped);
    CHECK(t.stopping().reductions == 1);
    // reports[i] is epoch i + 1: epochs best + 1 and best + 2 make the plateau, epoch best + 3
    // runs at the halved rate.
    CHECK(reports[best].lr == doctest::Approx(0.05));
    CHECK(reports[best + 1].lr == doctest::Approx(0.05));
    CHECK(reports[best + 2].lr == doctest::Approx(0.025));
    CHECK(reports.back().validation_accuracy < 0.5);
    CHECK(t.evaluate(validation).accuracy == t.stopping().best);  // the best epoch's weights are back
    CHECK(t.epochs_done() == best + 4);
    CHECK(log.str().find("kept epoch " + std::to_string(best)) != std::string::npos);
    // Called again, a finished run stays as it is.
    const auto w = weights_of(t.net());
    CHECK(t.fit(train, f, &validation).empty());
    CHECK(weights_of(t.net()) == w);
}

TEST_CASE("a run under a stopping rule killed mid-epoch resumes to the same result") {
    sgp_test::temp_dir dir("stop_resume");
    const auto split = synthetic_split(256, 64, 12);
    const sgp::sgd opt{.lr = 0.2f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = true};
    sgp::fit_options f;
    f.epochs = 12;
    f.log = nullptr;
    f.stop = sgp::stopping_rule{.patience = 1, .min_delta = 0.02, .lr_factor = 0.3f, .reductions = 2};

    sgp::batch_loader a_train(split.train, loader(32));
    sgp::validation_loader a_val(split.validation, loader(32));
    sgp::trainer<tiny> a{opt, {.threads = 2, .seed = 5}};
    const auto ra = a.fit(a_train, f, &a_val);
    const std::size_t best = a.stopping().best_epoch, last = a.epochs_done();
    // The kill must fall after the best epoch's checkpoint and before the end, so that the
    // resumed run has to take the best weights from the checkpoint, not from the last ones.
    REQUIRE(best + 1 < last);

    // The same run, killed in epoch best + 2 (after best + 1 checkpoints), then resumed.
    struct killed {};
    f.checkpoint = dir.file("ckpt.npz");
    {
        sgp::batch_loader b_train(split.train, loader(32));
        sgp::validation_loader b_val(split.validation, loader(32));
        sgp::trainer<tiny> b{opt, {.threads = 2, .seed = 5}};
        std::size_t steps = 0;
        const std::size_t kill_at = (best + 1) * b_train.batches() + 2;
        b.add_gradient_hook([&](tiny&) {
            if (++steps == kill_at) throw killed{};
        });
        CHECK_THROWS_AS(b.fit(b_train, f, &b_val), killed);
    }
    sgp::batch_loader c_train(split.train, loader(32));
    sgp::validation_loader c_val(split.validation, loader(32));
    sgp::trainer<tiny> c{opt, {.threads = 1, .seed = 999}};
    c.load_checkpoint(dir.file("ckpt.npz"));
    CHECK(c.epochs_done() == best + 1);
    CHECK(c.stopping().best_epoch == best);
    CHECK_FALSE(c.stopping().finished);
    c.fit(c_train, f, &c_val);
    CHECK(c.stopping().to_json() == a.stopping().to_json());
    CHECK(c.epochs_done() == last);
    CHECK(weights_of(c.net()) == weights_of(a.net()));
    // The last checkpoint holds the result: loaded, it is the same network, and nothing trains.
    sgp::trainer<tiny> d{opt, {.threads = 1}};
    d.load_checkpoint(dir.file("ckpt.npz"));
    CHECK(d.stopping().finished);
    CHECK(weights_of(d.net()) == weights_of(a.net()));
    CHECK(d.fit(c_train, f, &c_val).empty());
    CHECK(ra.size() == last);
}

TEST_CASE("a stopping state belongs to one fit: another origin or a pruned network starts afresh") {
    const auto split = synthetic_split(192, 48, 14);
    sgp::batch_loader train(split.train, loader(32));
    sgp::validation_loader validation(split.validation, loader(32));
    sgp::trainer<tiny> t{sgp::sgd{.lr = 0.05f, .momentum = 0.9f}, {.threads = 1, .seed = 2}};
    sgp::fit_options f;
    f.epochs = 2;
    f.log = nullptr;
    f.stop = sgp::stopping_rule{};
    CHECK(t.fit(train, f, &validation).size() == 2);
    CHECK(t.stopping().finished);
    // The same origin and network: finished, nothing trains.
    CHECK(t.fit(train, f, &validation).empty());
    // Pruned in between: a fresh state, so the run trains (and never restores the wider network).
    auto p = sgp::prune::current_plan(t.net());
    p.layers[0].keep = {0, 2};
    sgp::prune::apply(t.net(), p);
    f.epochs = 3;
    CHECK(t.fit(train, f, &validation).size() == 1);
    CHECK(t.net().class_widths()[sgp::prune::channel_groups<tiny>()[0].cls] == 2);
    CHECK(t.stopping().parameters == t.net().active_parameter_count());
    // reset_stopping() forgets the state: the next fit at the same origin starts afresh.
    t.reset_stopping();
    f.epochs = 4;
    CHECK(t.fit(train, f, &validation).size() == 1);
    CHECK(t.stopping().best_epoch == 4);
}

template <class Loader>
concept monitors_fit = requires(sgp::trainer<tiny>& t, sgp::batch_loader& train, Loader& l, sgp::fit_options f) {
    t.fit(train, f, &l);
};

TEST_CASE("a decision loader takes validation images only, by type") {
    // The test set cannot become a validation loader, and a plain loader cannot be passed
    // where a decision is taken: these do not compile.
    static_assert(!std::is_constructible_v<sgp::validation_loader, const sgp::dataset&, sgp::loader_options>);
    static_assert(!std::is_constructible_v<sgp::validation_set, sgp::dataset>);
    static_assert(!std::is_default_constructible_v<sgp::validation_set>);
    static_assert(!std::is_convertible_v<sgp::batch_loader*, sgp::validation_loader*>);
    static_assert(!std::is_convertible_v<sgp::batch_loader&, sgp::validation_loader&>);
    static_assert(!monitors_fit<sgp::batch_loader>);
    static_assert(monitors_fit<sgp::validation_loader>);
    // A validation loader reads in order and unaugmented, whatever options it is given.
    const auto split = synthetic_split(64, 20, 13);
    auto o = loader(8);
    o.shuffle = true;
    o.crop_padding = 2;
    o.flip = true;
    sgp::validation_loader v(split.validation, o);
    CHECK_FALSE(v.options().shuffle);
    CHECK(v.options().crop_padding == 0);
    CHECK_FALSE(v.options().flip);
}
