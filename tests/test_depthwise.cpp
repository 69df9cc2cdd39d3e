// Depthwise convolution, ReLU6 and the ReLU6 epilogue against plain double-precision loops.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <sgp/core/parallel.hpp>
#include <sgp/kernels/depthwise_conv.hpp>
#include <sgp/kernels/relu.hpp>
#include <vector>

#include "helpers.hpp"

using sgp::kernels::conv_epilogue;
using sgp::kernels::depthwise_geometry;
using sgp_test::random_vector;

namespace {

// The epilogue's own parameters in double: (v + b) * a + t, then relu or relu6.
struct ref_epilogue {
    const float *bias = nullptr, *scale = nullptr, *shift = nullptr;
    bool relu = false, relu6 = false;
    double operator()(std::size_t c, double v) const {
        if (bias) v += bias[c];
        if (scale) v = v * scale[c] + shift[c];
        if (relu) v = std::max(v, 0.0);
        if (relu6) v = std::min(std::max(v, 0.0), 6.0);
        return v;
    }
};

// Calls f(c, n, oy, ox, ky, kx, iy, ix) for every tap that reads the map (padding skipped).
template <class F>
void each_tap(const depthwise_geometry& g, F&& f) {
    for (std::size_t c = 0; c < g.c; ++c)
        for (std::size_t n = 0; n < g.n; ++n)
            for (std::size_t oy = 0; oy < g.oh; ++oy)
                for (std::size_t ox = 0; ox < g.ow; ++ox)
                    for (std::size_t ky = 0; ky < g.k; ++ky)
                        for (std::size_t kx = 0; kx < g.k; ++kx) {
                            const long iy = static_cast<long>(oy * g.stride + ky) - static_cast<long>(g.pad);
                            const long ix = static_cast<long>(ox * g.stride + kx) - static_cast<long>(g.pad);
                            if (iy < 0 || ix < 0 || iy >= static_cast<long>(g.h) || ix >= static_cast<long>(g.w))
                                continue;
                            f(c, n, oy, ox, ky, kx, static_cast<std::size_t>(iy), static_cast<std::size_t>(ix));
                        }
}

std::vector<double> ref_forward(const depthwise_geometry& g, const float* x, const float* w, const ref_epilogue& e) {
    std::vector<double> y(g.c * g.n * g.oh * g.ow, 0.0);
    each_tap(g, [&](auto c, auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
        y[((c * g.n + n) * g.oh + oy) * g.ow + ox] +=
            static_cast<double>(x[((c * g.n + n) * g.h + iy) * g.w + ix]) * w[(c * g.k + ky) * g.k + kx];
    });
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = e(i / (g.n * g.oh * g.ow), y[i]);
    return y;
}

std::vector<double> ref_backward_data(const depthwise_geometry& g, const float* dy, const float* w) {
    std::vector<double> dx(g.c * g.n * g.h * g.w, 0.0);
    each_tap(g, [&](auto c, auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
        dx[((c * g.n + n) * g.h + iy) * g.w + ix] +=
            static_cast<double>(dy[((c * g.n + n) * g.oh + oy) * g.ow + ox]) * w[(c * g.k + ky) * g.k + kx];
    });
    return dx;
}

std::vector<double> ref_backward_weights(const depthwise_geometry& g, const float* x, const float* dy) {
    std::vector<double> dw(g.c * g.k * g.k, 0.0);
    each_tap(g, [&](auto c, auto n, auto oy, auto ox, auto ky, auto kx, auto iy, auto ix) {
        dw[(c * g.k + ky) * g.k + kx] +=
            static_cast<double>(x[((c * g.n + n) * g.h + iy) * g.w + ix]) * dy[((c * g.n + n) * g.oh + oy) * g.ow + ox];
    });
    return dw;
}

std::size_t threads_of(sgp::thread_pool* pool) {
    return pool ? pool->size() : 1;
}

// Scratch full of NaN: a kernel that reads scratch it has not written shows in its results.
std::vector<float> scratch_for(const depthwise_geometry& g, std::size_t threads) {
    return std::vector<float>(sgp::kernels::depthwise_scratch_floats(g, threads),
                              std::numeric_limits<float>::quiet_NaN());
}

// The largest |a - b| / (1 + |b|).
double worst(const std::vector<float>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
    return m;
}

struct shape {
    std::size_t h, w;
};

// Every geometry of the sweep: kernels, strides, paddings, odd and vector-wide maps, batches, channels.
template <class F>
void sweep(const std::vector<std::size_t>& kernels, const std::vector<std::size_t>& strides, F&& f) {
    const shape maps[] = {{7, 5}, {5, 7}, {16, 16}, {9, 32}, {8, 8}};
    const std::size_t batches[] = {1, 3}, channels[] = {1, 2, 17};
    for (std::size_t k : kernels)
        for (std::size_t s : strides)
            for (std::size_t p = 0; p <= 2; ++p)
                for (auto m : maps)
                    for (std::size_t n : batches)
                        for (std::size_t c : channels) {
                            if (m.h + 2 * p < k || m.w + 2 * p < k) continue;
                            // The large maps with the small batch and channel counts only: time.
                            if (m.h * m.w > 64 && c * n > 17) continue;
                            f(sgp::kernels::make_depthwise_geometry(n, c, m.h, m.w, k, s, p));
                        }
}

#define CAPTURE_GEOMETRY(g) \
    CAPTURE((g).n);         \
    CAPTURE((g).c);         \
    CAPTURE((g).h);         \
    CAPTURE((g).w);         \
    CAPTURE((g).k);         \
    CAPTURE((g).stride);    \
    CAPTURE((g).pad)

}  // namespace

TEST_CASE("depthwise geometry: output size as PyTorch's") {
    const auto g = sgp::kernels::make_depthwise_geometry(2, 3, 7, 5, 3, 2, 1);
    CHECK(g.oh == 4);  // (7 + 2 - 3) / 2 + 1
    CHECK(g.ow == 3);  // (5 + 2 - 3) / 2 + 1
    const auto h = sgp::kernels::make_depthwise_geometry(1, 1, 16, 16, 5, 1, 2);
    CHECK(h.oh == 16);
    CHECK(h.ow == 16);
    CHECK(sgp::kernels::depthwise_scratch_floats(h, 2) == 2 * sgp::kernels::depthwise_scratch_floats(h, 1));
}

TEST_CASE("depthwise forward matches the reference, with and without every epilogue") {
    sgp::thread_pool pool(2);
    std::size_t cases = 0, sixes = 0, zeros = 0;
    sweep({3, 5}, {1, 2}, [&](const depthwise_geometry& g) {
        const auto x = random_vector(g.c * g.n * g.h * g.w, 1), w = random_vector(g.c * g.k * g.k, 2);
        const auto bias = random_vector(g.c, 3), scale = random_vector(g.c, 4, 1.f, 4.f),
                   shift = random_vector(g.c, 5, -1.f, 3.f);
        for (int variant = 0; variant < 4; ++variant) {
            CAPTURE_GEOMETRY(g);
            CAPTURE(variant);
            conv_epilogue e;
            ref_epilogue r;
            if (variant >= 1) e.bias = r.bias = bias.data();
            if (variant >= 2) {
                e.scale = r.scale = scale.data();
                e.shift = r.shift = shift.data();
            }
            if (variant == 2) e.relu = r.relu = true;
            if (variant == 3) e.relu6 = r.relu6 = true;
            sgp::thread_pool* p = (cases % 2) ? &pool : nullptr;
            auto scratch = scratch_for(g, threads_of(p));
            std::vector<float> y(g.c * g.n * g.oh * g.ow, std::numeric_limits<float>::quiet_NaN());
            sgp::kernels::depthwise_forward(g, x.data(), w.data(), y.data(), e, scratch.data(), p);
            const auto ref = ref_forward(g, x.data(), w.data(), r);
            CHECK(worst(y, ref) <= 2e-6);
            if (variant == 3)
                for (float v : y) {
                    CHECK(v >= 0.f);
                    CHECK(v <= 6.f);
                    sixes += v == 6.f;
                    zeros += v == 0.f;
                }
            ++cases;
        }
    });
    CHECK(cases > 500);
    // The ReLU6 clamps were reached on both sides.
    CHECK(sixes > 100);
    CHECK(zeros > 100);
}

TEST_CASE("depthwise forward, backward: other kernels and strides (the general loop)") {
    sgp::thread_pool pool(2);
    std::size_t cases = 0;
    sweep({1, 2, 4, 7}, {1, 2, 3}, [&](const depthwise_geometry& g) {
        if (g.c > 2) return;  // the sweep's shapes, fewer of them
        CAPTURE_GEOMETRY(g);
        const auto x = random_vector(g.c * g.n * g.h * g.w, 11), w = random_vector(g.c * g.k * g.k, 12),
                   dy = random_vector(g.c * g.n * g.oh * g.ow, 13), bias = random_vector(g.c, 14);
        auto scratch = scratch_for(g, 2);
        conv_epilogue e;
        e.bias = bias.data();
        ref_epilogue r;
        r.bias = bias.data();
        std::vector<float> y(dy.size()), dx(x.size()), dw(w.size());
        sgp::kernels::depthwise_forward(g, x.data(), w.data(), y.data(), e, scratch.data(), &pool);
        CHECK(worst(y, ref_forward(g, x.data(), w.data(), r)) <= 2e-6);
        sgp::kernels::depthwise_backward_data(g, dy.data(), w.data(), dx.data(), scratch.data(), &pool);
        CHECK(worst(dx, ref_backward_data(g, dy.data(), w.data())) <= 2e-6);
        sgp::kernels::depthwise_backward_weights(g, x.data(), dy.data(), dw.data(), scratch.data(), &pool);
        CHECK(worst(dw, ref_backward_weights(g, x.data(), dy.data())) <= 1e-5);  // sums of ~10^3 terms
        ++cases;
    });
    CHECK(cases > 100);
}

TEST_CASE("depthwise backward data and weights match the reference") {
    sgp::thread_pool pool(2);
    std::size_t cases = 0;
    sweep({3, 5}, {1, 2}, [&](const depthwise_geometry& g) {
        CAPTURE_GEOMETRY(g);
        const auto x = random_vector(g.c * g.n * g.h * g.w, 21), w = random_vector(g.c * g.k * g.k, 22),
                   dy = random_vector(g.c * g.n * g.oh * g.ow, 23);
        sgp::thread_pool* p = (cases % 2) ? &pool : nullptr;
        auto scratch = scratch_for(g, threads_of(p));
        // Filled with NaN: every element must be overwritten.
        std::vector<float> dx(x.size(), std::numeric_limits<float>::quiet_NaN()),
            dw(w.size(), std::numeric_limits<float>::quiet_NaN());
        sgp::kernels::depthwise_backward_data(g, dy.data(), w.data(), dx.data(), scratch.data(), p);
        CHECK(worst(dx, ref_backward_data(g, dy.data(), w.data())) <= 2e-6);
        sgp::kernels::depthwise_backward_weights(g, x.data(), dy.data(), dw.data(), scratch.data(), p);
        CHECK(worst(dw, ref_backward_weights(g, x.data(), dy.data())) <= 1e-5);  // sums of ~10^3 terms
        ++cases;
    });
    CHECK(cases > 100);
}

TEST_CASE("depthwise backward weights: sums of 10^4 terms stay within 1e-6 of float64") {
    // Positive inputs: no cancellation, the sums grow, and a plain float loop would drift.
    for (std::size_t s : {1, 2}) {
        CAPTURE(s);
        const auto g = sgp::kernels::make_depthwise_geometry(10, 3, 32, 32, 3, s, 1);
        const auto x = random_vector(g.c * g.n * g.h * g.w, 31, 0.f, 1.f),
                   dy = random_vector(g.c * g.n * g.oh * g.ow, 32, 0.f, 1.f);
        std::vector<float> scratch(sgp::kernels::depthwise_scratch_floats(g, 2)), dw(g.c * g.k * g.k);
        sgp::thread_pool pool(2);
        sgp::kernels::depthwise_backward_weights(g, x.data(), dy.data(), dw.data(), scratch.data(), &pool);
        const auto ref = ref_backward_weights(g, x.data(), dy.data());
        for (std::size_t i = 0; i < dw.size(); ++i) CHECK(std::abs(dw[i] - ref[i]) <= 1e-6 * ref[i]);
        // Mixed signs, random as a network's: norm-wise as the golden tests measure.
        const auto xs = random_vector(x.size(), 33), dys = random_vector(dy.size(), 34);
        sgp::kernels::depthwise_backward_weights(g, xs.data(), dys.data(), dw.data(), scratch.data(), &pool);
        const auto refs = ref_backward_weights(g, xs.data(), dys.data());
        CHECK(sgp_test::relative_error(dw.data(), refs.data(), dw.size()) <= 1e-6);
    }
}

TEST_CASE("depthwise gradients agree with central differences of the forward") {
    const auto g = sgp::kernels::make_depthwise_geometry(2, 2, 6, 5, 3, 2, 1);
    auto x = random_vector(g.c * g.n * g.h * g.w, 41), w = random_vector(g.c * g.k * g.k, 42);
    const auto r = random_vector(g.c * g.n * g.oh * g.ow, 43);
    std::vector<float> scratch(sgp::kernels::depthwise_scratch_floats(g, 1)), y(r.size()), dx(x.size()), dw(w.size());
    // L = sum(y * r): dL/dy = r.
    auto loss = [&] {
        sgp::kernels::depthwise_forward(g, x.data(), w.data(), y.data(), {}, scratch.data(), nullptr);
        double l = 0;
        for (std::size_t i = 0; i < y.size(); ++i) l += static_cast<double>(y[i]) * r[i];
        return l;
    };
    sgp::kernels::depthwise_backward_data(g, r.data(), w.data(), dx.data(), scratch.data(), nullptr);
    sgp::kernels::depthwise_backward_weights(g, x.data(), r.data(), dw.data(), scratch.data(), nullptr);
    const float eps = 1e-2f;
    auto central = [&](std::vector<float>& v, std::size_t i) {
        const float keep = v[i];
        v[i] = keep + eps;
        const double up = loss();
        v[i] = keep - eps;
        const double down = loss();
        v[i] = keep;
        return (up - down) / (2.0 * static_cast<double>(eps));
    };
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        CAPTURE(i);
        const double num = central(x, i);
        CHECK(std::abs(num - dx[i]) <= 1e-3 * (1 + std::abs(num)));
        nonzero += dx[i] != 0.f;
    }
    for (std::size_t i = 0; i < w.size(); ++i) {
        CAPTURE(i);
        const double num = central(w, i);
        CHECK(std::abs(num - dw[i]) <= 1e-3 * (1 + std::abs(num)));
    }
    CHECK(nonzero > x.size() / 2);
}

TEST_CASE("depthwise kernels give the same bits for any thread count") {
    const auto g = sgp::kernels::make_depthwise_geometry(3, 7, 11, 13, 3, 1, 1);
    const auto x = random_vector(g.c * g.n * g.h * g.w, 51), w = random_vector(g.c * g.k * g.k, 52),
               dy = random_vector(g.c * g.n * g.oh * g.ow, 53);
    sgp::thread_pool two(2);
    auto run = [&](sgp::thread_pool* p) {
        auto scratch = scratch_for(g, threads_of(p));
        std::vector<float> y(dy.size()), dx(x.size()), dw(w.size());
        sgp::kernels::depthwise_forward(g, x.data(), w.data(), y.data(), {}, scratch.data(), p);
        sgp::kernels::depthwise_backward_data(g, dy.data(), w.data(), dx.data(), scratch.data(), p);
        sgp::kernels::depthwise_backward_weights(g, x.data(), dy.data(), dw.data(), scratch.data(), p);
        y.insert(y.end(), dx.begin(), dx.end());
        y.insert(y.end(), dw.begin(), dw.end());
        return y;
    };
    CHECK(run(nullptr) == run(&two));
}

TEST_CASE("depthwise forward: a fused relu / relu6 epilogue is bit-identical to the separate kernels") {
    for (std::size_t s : {1, 2}) {
        const auto g = sgp::kernels::make_depthwise_geometry(2, 5, 10, 19, 5, s, 2);
        const auto x = random_vector(g.c * g.n * g.h * g.w, 61), w = random_vector(g.c * g.k * g.k, 62),
                   scale = random_vector(g.c, 63, 1.f, 5.f), shift = random_vector(g.c, 64, -1.f, 4.f);
        auto scratch = scratch_for(g, 1);
        const std::size_t len = g.c * g.n * g.oh * g.ow;
        std::vector<float> affine(len), fused(len), separate(len);
        conv_epilogue e;
        e.scale = scale.data();
        e.shift = shift.data();
        sgp::kernels::depthwise_forward(g, x.data(), w.data(), affine.data(), e, scratch.data(), nullptr);
        e.relu6 = true;
        sgp::kernels::depthwise_forward(g, x.data(), w.data(), fused.data(), e, scratch.data(), nullptr);
        sgp::kernels::relu6(affine.data(), separate.data(), len);
        CHECK(fused == separate);
        e.relu6 = false;
        e.relu = true;
        sgp::kernels::depthwise_forward(g, x.data(), w.data(), fused.data(), e, scratch.data(), nullptr);
        sgp::kernels::relu(affine.data(), separate.data(), len);
        CHECK(fused == separate);
    }
}

TEST_CASE("relu6 and relu6_backward: exact, including 0 and 6 themselves") {
    // More values than a vector, with a ragged tail: both paths.
    std::vector<float> x = {-7.f,      -1e-30f, -0.f,       0.f, 1e-30f, 0.5f,  3.f,
                            5.999999f, 6.f,     6.0000005f, 7.f, 1e30f,  -1e30f};
    const auto more = random_vector(40, 71, -3.f, 9.f);
    x.insert(x.end(), more.begin(), more.end());
    const std::size_t n = x.size();
    std::vector<float> y(n), dy = random_vector(n, 72), dx_in(n), dx_out(n);
    sgp::kernels::relu6(x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
        CAPTURE(x[i]);
        CHECK(y[i] == (x[i] <= 0.f ? 0.f : x[i] >= 6.f ? 6.f : x[i]));
    }
    CHECK(y[8] == 6.f);
    CHECK(y[7] == 5.999999f);
    // In place, as a layer may call it.
    std::vector<float> z = x;
    sgp::kernels::relu6(z.data(), z.data(), n);
    CHECK(z == y);
    // The gradient passes strictly inside (0, 6), from the input or the output alike.
    sgp::kernels::relu6_backward(x.data(), dy.data(), dx_in.data(), n);
    sgp::kernels::relu6_backward(y.data(), dy.data(), dx_out.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
        CAPTURE(x[i]);
        CHECK(dx_in[i] == (x[i] > 0.f && x[i] < 6.f ? dy[i] : 0.f));
    }
    CHECK(dx_in == dx_out);
    CHECK(dx_in[3] == 0.f);    // x = 0
    CHECK(dx_in[8] == 0.f);    // x = 6
    CHECK(dx_in[7] == dy[7]);  // just below 6
    CHECK(dx_in[4] == dy[4]);  // just above 0
}

TEST_CASE("conv_epilogue: relu6 in the vector and scalar paths, counted by empty()") {
    conv_epilogue e;
    CHECK(e.empty());
    e.relu6 = true;
    CHECK(!e.empty());
    const std::size_t len = 37;  // vectors and a scalar tail
    const auto v = random_vector(len, 81, -4.f, 4.f), bias = random_vector(2, 82),
               scale = random_vector(2, 83, 1.f, 3.f), shift = random_vector(2, 84, -1.f, 3.f);
    e.bias = bias.data();
    e.scale = scale.data();
    e.shift = shift.data();
    std::vector<float> out(len);
    std::size_t sixes = 0, zeros = 0;
    for (std::size_t m = 0; m < 2; ++m) {
        e.apply(m, v.data(), out.data(), len);
        for (std::size_t i = 0; i < len; ++i) {
            const float a = std::fma(v[i] + bias[m], scale[m], shift[m]);
            CHECK(out[i] == std::min(std::max(a, 0.f), 6.f));
            sixes += out[i] == 6.f;
            zeros += out[i] == 0.f;
        }
    }
    CHECK(sixes > 0);
    CHECK(zeros > 0);
}
