// What keeps long runs safe: atomic writes that clean up after killed writers, the folder
// lock of experiments, divergence stopped at any step with nothing non-finite saved, and
// checkpoints whose fields are range-checked on load.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sgp/io/lock_file.hpp>
#include <sgp/quant/qmodel.hpp>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

using namespace sgp::layers;

using small = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<4>, batch_norm, relu, max_pool<2>, conv3x3<8>, batch_norm,
                              relu, global_avg_pool, flatten, linear<3>>;

namespace {

// A process id that no process has now: a child that has already exited and been reaped.
long dead_pid() {
    const pid_t p = ::fork();
    if (p == 0) ::_exit(0);
    int status = 0;
    ::waitpid(p, &status, 0);
    return p;
}

std::size_t files_in(const std::filesystem::path& d) {
    return static_cast<std::size_t>(
        std::distance(std::filesystem::directory_iterator(d), std::filesystem::directory_iterator{}));
}

sgp::dataset noise(std::size_t n) {
    sgp::dataset d;
    d.source = "noise";
    d.channels = 1;
    d.height = d.width = 8;
    d.classes = 3;
    sgp::rng r(3);
    for (std::size_t i = 0; i < n; ++i) {
        d.labels.push_back(static_cast<std::uint8_t>(r.below(3)));
        for (std::size_t k = 0; k < 64; ++k) d.images.push_back(static_cast<std::uint8_t>(r.below(256)));
    }
    return d;
}

sgp::loader_options batches(std::size_t batch) {
    sgp::loader_options o;
    o.batch = batch;
    o.mean = {0.5f};
    o.std = {0.25f};
    return o;
}

}  // namespace

TEST_CASE("an atomic write removes the temporaries of killed writers of the same file, and only those") {
    sgp_test::temp_dir d("stale-tmp");
    const std::string dead = std::to_string(dead_pid());
    for (const auto* name : {"f.tmp.", "g.tmp."}) sgp::write_file_atomic(d.file(std::string(name) + dead), "old");
    sgp::write_file_atomic(d.file("f.tmp.1"), "pid 1 is alive");  // init: a live writer
    sgp::write_file_atomic(d.file("f.tmp.x"), "not a writer's");
    sgp::write_file_atomic(d.file("f"), "new");
    CHECK_FALSE(std::filesystem::exists(d.file("f.tmp." + dead)));
    CHECK(std::filesystem::exists(d.file("g.tmp." + dead)));  // another target's
    CHECK(std::filesystem::exists(d.file("f.tmp.1")));
    CHECK(std::filesystem::exists(d.file("f.tmp.x")));
    CHECK(files_in(d.path) == 4);
}

TEST_CASE("a folder lock refuses a second holder and is taken over once its holder is gone") {
    sgp_test::temp_dir d("lock");
    {
        const sgp::lock_file first(d.file("lock"));
        CHECK_THROWS_WITH_AS(sgp::lock_file(d.file("lock")),
                             doctest::Contains(("another run (process " + std::to_string(::getpid()) + ")").c_str()),
                             sgp::error);
    }
    CHECK_NOTHROW(sgp::lock_file(d.file("lock")));
    // A holder killed without any clean-up: the kernel drops its lock.
    const pid_t child = ::fork();
    if (child == 0) {
        const sgp::lock_file held(d.file("lock"));
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK_NOTHROW(sgp::lock_file(d.file("lock")));
}

TEST_CASE("divergence on the last step of an epoch stops before the checkpoint, naming epoch and step") {
    sgp_test::temp_dir d("diverge");
    const auto data = noise(16);
    sgp::batch_loader train(data, batches(16));  // one step per epoch: the last step is the only one
    // The validation images are the training images (each held twice, 16 drawn): after the
    // step their loss is what overflows.
    auto twice = data;
    twice.images.insert(twice.images.end(), data.images.begin(), data.images.end());
    twice.labels.insert(twice.labels.end(), data.labels.begin(), data.labels.end());
    const auto split = sgp::hold_out(twice, 16, 1);
    sgp::validation_loader validation(split.validation, batches(16));
    sgp::trainer<small> t{sgp::sgd{.lr = 1e30f, .momentum = 0.9f}};
    sgp::fit_options f;
    f.epochs = 1;
    f.log = nullptr;
    f.checkpoint = d.file("c.npz");
    CHECK_THROWS_WITH_AS(t.fit(train, f, &validation), doctest::Contains("after epoch 1"), sgp::error);
    CHECK_FALSE(std::filesystem::exists(d.file("c.npz")));
}

TEST_CASE("an update that makes a parameter non-finite fails naming it, the epoch and the step") {
    sgp_test::temp_dir d("inf-update");
    const auto data = noise(32);
    sgp::batch_loader train(data, batches(16));
    sgp::trainer<small> t{sgp::sgd{.lr = 0.01f}};
    int calls = 0;
    t.add_gradient_hook([&](small& n) {
        if (++calls == 2) n.layer<9>().for_each_tensor([](const sgp::tensor_ref& r) { r.grad[0] = INFINITY; });
    });
    sgp::fit_options f;
    f.epochs = 1;
    f.log = nullptr;
    f.checkpoint = d.file("c.npz");
    std::string message;
    try {
        t.fit(train, f);
    } catch (const sgp::error& e) {
        message = e.what();
    }
    CHECK_MESSAGE(message.find("the update made '9.weight' non-finite (-inf at index 0)") != std::string::npos,
                  message);
    CHECK_MESSAGE(message.find("at epoch 1, step 2 of 2") != std::string::npos, message);
    CHECK_FALSE(std::filesystem::exists(d.file("c.npz")));
}

TEST_CASE("a checkpoint with a non-finite tensor is neither written nor loaded") {
    sgp_test::temp_dir d("nan-ckpt");
    sgp::trainer<small> t;
    t.save_checkpoint(d.file("ok.npz"));
    t.net().layer<0>().for_each_tensor([](const sgp::tensor_ref& r) { r.value[0] = NAN; });
    CHECK_THROWS_WITH_AS(t.save_checkpoint(d.file("bad.npz")), doctest::Contains("tensor '0.weight' (layer 0, conv2d)"),
                         sgp::error);
    CHECK_FALSE(std::filesystem::exists(d.file("bad.npz")));
    // The same network written as a plain state dict (as another tool might) and loaded.
    auto a = sgp::load_npz(d.file("ok.npz"));
    sgp::npz_archive w;
    sgp::add_state_dict(t.net(), w);
    for (auto& [k, v] : w) a[k] = v;
    sgp::save_npz(d.file("bad.npz"), a);
    sgp::trainer<small> u;
    CHECK_THROWS_WITH_AS(u.load_checkpoint(d.file("bad.npz")), doctest::Contains("'0.weight'"), sgp::error);
    // Quantization refuses it too, before any fix point is chosen.
    CHECK_THROWS_WITH_AS(sgp::quant::fold(t.net()), doctest::Contains("non-finite"), sgp::error);
}

TEST_CASE("checkpoint fields are range-checked on load, and a caller's entries round-trip") {
    sgp_test::temp_dir d("ckpt-range");
    sgp::trainer<small> t;
    t.save_checkpoint(d.file("c.npz"), {{"run.settings", sgp::text_entry("{\"--seed\":\"2\"}")}});
    sgp::trainer<small> u;
    CHECK(sgp::text_of(u.load_checkpoint(d.file("c.npz")), "run.settings", "c") == "{\"--seed\":\"2\"}");
    for (const auto& [key, value] : {std::pair<std::string, std::int64_t>{"trainer.epoch", -5},
                                     {"trainer.epoch", 1'000'001},
                                     {"trainer.step", -1},
                                     {"trainer.seed", -1}}) {
        auto a = sgp::load_npz(d.file("c.npz"));
        a[key] = sgp::npy_array::from_int64(value);
        sgp::save_npz(d.file("edited.npz"), a);
        CHECK_THROWS_WITH_AS(
            u.load_checkpoint(d.file("edited.npz")),
            doctest::Contains(("'" + key + "' is " + std::to_string(value) + ", outside 0 to").c_str()), sgp::error);
    }
}
