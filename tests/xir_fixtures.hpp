#pragma once
// The .xmodel files in tests/fixtures/xir: XIR 3.5's own writer (Graph::serialize) produced
// each from a graph sgp wrote for sgp_test::random_model(seed), loaded in XIR and, for two
// variants, edited there the way other tools' files differ from sgp's: a conv2d with no bias
// (XIR then lists an empty `bias` input) and data types spelled "float32". test_xir makes them
// (SGP_XIR_WRITE_FIXTURES, where XIR is available); test_xmodel reads them everywhere.
#include <array>
#include <cstdint>
#include <string>
#include <variant>

#include "qmodel_fixtures.hpp"

namespace sgp_test {

enum class xir_variant { plain, first_conv_without_bias, lower_case_types };
inline constexpr std::array xir_variants{xir_variant::plain, xir_variant::first_conv_without_bias,
                                         xir_variant::lower_case_types};

inline const char* variant_name(xir_variant v) {
    switch (v) {
        case xir_variant::plain:
            return "plain";
        case xir_variant::first_conv_without_bias:
            return "nobias";
        case xir_variant::lower_case_types:
            return "float32";
    }
    return "?";
}

// The files: every variant of one model (conv, conv, max pool, linear), and one larger model
// (three convs, a max pool, two linear layers) as XIR writes it. Each file also holds XIR's
// op definitions (about 72 KB).
// Then graphs of random_graph(seed) (residual adds, depthwise convs with ReLU6, average pools
// with the DPU's factor as a mul, concats), chosen so that every op kind is in some file.
struct xir_fixture {
    std::uint64_t seed;
    xir_variant variant;
    bool graph = false;
};
inline constexpr std::array<xir_fixture, 7> xir_fixture_files{{{2, xir_variant::plain},
                                                               {2, xir_variant::first_conv_without_bias},
                                                               {2, xir_variant::lower_case_types},
                                                               {34, xir_variant::plain},
                                                               {12, xir_variant::plain, true},
                                                               {36, xir_variant::plain, true},
                                                               {38, xir_variant::plain, true}}};
inline bool is_fixture(std::uint64_t seed, xir_variant v, bool graph = false) {
    for (const auto& f : xir_fixture_files)
        if (f.seed == seed && f.variant == v && f.graph == graph) return true;
    return false;
}
inline std::string fixture_name(std::uint64_t seed, xir_variant v, bool graph = false) {
    return (graph ? "graph" : "random") + std::to_string(seed) + "_" + variant_name(v) + ".xmodel";
}
inline qmodel fixture_model(const xir_fixture& f) {
    return f.graph ? random_graph(f.seed) : random_model(f.seed);
}

// The model a variant's file describes: without the first conv's bias, that conv adds zeros.
inline qmodel expected_after(qmodel m, xir_variant v) {
    if (v == xir_variant::first_conv_without_bias)
        for (auto& op : m.ops)
            if (auto* c = std::get_if<qconv>(&op)) {
                std::fill(c->qbias.begin(), c->qbias.end(), std::int8_t{0});
                std::fill(c->bias.begin(), c->bias.end(), 0.f);
                break;
            }
    return m;
}

}  // namespace sgp_test
