#pragma once
// Shared test utilities: random tensors, error measures, and a central-difference
// gradient checker for a single layer.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp_test {

inline std::vector<float> random_vector(std::size_t n, std::uint64_t seed, float lo = -1.f, float hi = 1.f) {
    sgp::rng r(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = r.uniform(lo, hi);
    return v;
}

// ||a - b|| / max(||b||, floor): norm-wise relative error against the reference b. The
// floor keeps tensors that are zero in exact arithmetic (a conv bias before batch norm has
// a zero gradient) from turning rounding noise into a huge relative error.
inline double relative_error(const float* a, const double* b, std::size_t n, double floor = 0) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < n; ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    den = std::max(std::sqrt(den), floor);
    return den == 0 ? std::sqrt(num) : std::sqrt(num) / den;
}

// A fresh temporary folder per test, removed at the end of the scope.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const std::string& name) {
        path = std::filesystem::temp_directory_path() / ("sgp-test-" + name + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    // SGP_TEST_KEEP=1 keeps the files (to give every .xmodel the tests write to the real XIR).
    ~temp_dir() {
        if (!std::getenv("SGP_TEST_KEEP")) std::filesystem::remove_all(path);
    }
    std::string file(const std::string& f) const { return (path / f).string(); }
};

// Checks a layer's backward against central differences of L = sum(y * r) for a random
// projection r, on every input value and every parameter value. `x` is channel-major
// [C][n][H][W]. Returns the largest error seen, measured as |num - ana| / (atol + rtol*|ana|).
template <class L>
double check_layer_gradients(L& layer, std::vector<float> x, std::size_t n, float eps = 1e-2f, double rtol = 1e-2,
                             double atol = 2e-3, bool check_input = true) {
    sgp::run_context cx;
    cx.training = true;
    layer.reserve(n);  // a composite's inner activations
    sgp::aligned_buffer<float> s1(layer.workspace(n) + 1), s2(layer.workspace(n) + 1);
    cx.scratch = &s1;
    cx.scratch2 = &s2;
    const std::size_t out_len = layer.out_channels() * n * L::out_shape.plane();
    sgp::aligned_buffer<float> y(out_len), dx(x.size());
    const auto r = random_vector(out_len, 99);
    auto loss = [&]() {
        layer.forward(cx, x.data(), y.data(), n);
        double s = 0;
        for (std::size_t i = 0; i < out_len; ++i) s += static_cast<double>(y[i]) * r[i];
        return s;
    };
    loss();
    layer.backward(cx, x.data(), y.data(), r.data(), dx.data(), n);
    // Keep the analytic gradients before the perturbations overwrite layer state.
    std::vector<std::vector<float>> grads;
    layer.for_each_tensor([&](const sgp::tensor_ref& t) {
        if (t.grad) grads.emplace_back(t.grad, t.grad + t.size());
    });
    double worst = 0;
    auto compare = [&](double num, double ana, const std::string& what) {
        const double e = std::abs(num - ana) / (atol + rtol * std::abs(ana));
        CHECK_MESSAGE(e <= 1.0, what << ": numeric " << num << " analytic " << ana);
        worst = std::max(worst, e);
    };
    auto numeric = [&](float& v) {
        const float keep = v;
        v = keep + eps;
        const double lp = loss();
        v = keep - eps;
        const double lm = loss();
        v = keep;
        return (lp - lm) / (2.0 * static_cast<double>(eps));
    };
    if (check_input)
        for (std::size_t i = 0; i < x.size(); ++i) compare(numeric(x[i]), dx[i], "input " + std::to_string(i));
    std::size_t p = 0;
    layer.for_each_tensor([&](const sgp::tensor_ref& t) {
        if (!t.grad) return;
        const auto& g = grads[p++];
        for (std::size_t i = 0; i < t.size(); ++i)
            compare(numeric(t.value[i]), g[i], std::string(t.name) + "[" + std::to_string(i) + "]");
    });
    return worst;
}

}  // namespace sgp_test
