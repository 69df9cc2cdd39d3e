// Writes each fuzz target's seed corpus into <dir>/<target>/: small valid inputs made by
// sgp's own writers, so every seed is explained by the code that made it.
#define DOCTEST_CONFIG_DISABLE  // qmodel_fixtures.hpp's REQUIREs: no test runner here
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "fuzz.hpp"
#include "fuzz_net.hpp"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"  // REQUIRE disabled above
#include "qmodel_fixtures.hpp"
#pragma GCC diagnostic pop
#include "sgp/data/cifar10.hpp"
#include "sgp/export/xmodel_writer.hpp"
#include "sgp/io/json.hpp"
#include "sgp/io/state_dict.hpp"

namespace {

std::filesystem::path root;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
    std::filesystem::create_directories(root / target);
    std::ofstream(root / target / name, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string idx(const std::vector<std::uint32_t>& dims, std::uint8_t fill) {
    std::string s{0, 0, 8, static_cast<char>(dims.size())};
    std::size_t n = 1;
    for (auto d : dims) {
        for (int b = 3; b >= 0; --b) s += static_cast<char>((d >> (8 * b)) & 0xff);
        n *= d;
    }
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(fill + i);
    return s;
}

// The plan of a network whose first group keeps channels 0 and 2, the second 1, 3 and 5.
sgp::prune::plan pruned_plan() {
    sgp_fuzz::net_t net;
    auto p = sgp::prune::current_plan(net);
    p.layers[0].keep = {0, 2};
    p.layers[1].keep = {1, 3, 5};
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_seeds <dir>\n";
        return 2;
    }
    root = argv[1];
    // IDX: the first byte is the target's mode (odd: gzip the rest in the target).
    const std::string images = idx({2, 5, 7}, 3), labels = idx({2}, 0);
    seed("idx", "images", "\0" + images);
    seed("idx", "images-gz-by-target", "\1" + images);
    seed("idx", "images.gz", "\0" + sgp_fuzz::gzip(images));
    seed("idx", "labels", "\0" + labels);
    seed("idx", "labels.gz", "\0" + sgp_fuzz::gzip(labels));

    std::string cifar;
    for (int r = 0; r < 2; ++r) {
        cifar += static_cast<char>(r + 3);
        for (std::size_t i = 0; i < 3 * 32 * 32; ++i) cifar += static_cast<char>(i * (r + 1));
    }
    seed("cifar", "two-records.bin", cifar);

    const float f[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    seed("npy", "floats.npy", sgp::npy_encode(sgp::npy_array::from_floats(f, {2, 3})));
    seed("npy", "int64.npy", sgp::npy_encode(sgp::npy_array::from_int64(42)));
    seed("npy", "indices.npy", sgp::npy_encode(sgp::npy_array::from_indices({0, 2, 5})));
    seed("npy", "empty.npy", sgp::npy_encode(sgp::npy_array::from_floats(f, {0, 3})));

    sgp_fuzz::net_t net;
    sgp::npz_archive full;
    sgp::add_state_dict(net, full);
    seed("npz", "two-arrays.npz",
         sgp::npz_encode({{"a", sgp::npy_array::from_floats(f, {6})}, {"b", sgp::npy_array::from_int64(1)}}, "seed"));
    seed("state_dict", "full.npz", sgp::npz_encode(full, "seed"));
    sgp::prune::apply(net, pruned_plan());
    sgp::npz_archive pruned;
    sgp::add_state_dict(net, pruned);
    seed("state_dict", "pruned.npz", sgp::npz_encode(pruned, "seed"));
    seed("npz", "state_dict.npz", sgp::npz_encode(pruned, "seed"));

    sgp_fuzz::net_t unpruned;
    seed("plan", "full.json", sgp::prune::to_json(sgp::prune::current_plan(unpruned)));
    seed("plan", "pruned.json", sgp::prune::to_json(pruned_plan()));
    seed("json", "plan.json", sgp::prune::to_json(pruned_plan()));
    sgp::json_writer j;
    j.begin_object().field("s", "q\"\\\n\t").field("n", -1.5e-7).field("i", std::size_t{3}).field("b", false);
    j.key("a").begin_array().value(1).begin_object().end_object().begin_array().end_array().end_array();
    j.key("z").value_raw("null").end_object();
    seed("json", "values.json", j.str());

    for (std::uint64_t s = 1; s <= 6; ++s)
        seed("xmodel", "random" + std::to_string(s) + ".xmodel",
             sgp::xmodel::to_bytes(sgp::xmodel::to_graph(sgp_test::random_model(s)), "seed"));
    return 0;
}
