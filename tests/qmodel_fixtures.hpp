#pragma once
// Random calibrated qmodels for the int8 and xmodel tests: many geometries, fix points
// anywhere the DPU's limits allow, integer weights over the whole int8 range.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <sgp/core/rng.hpp>
#include <sgp/quant/calibrate.hpp>
#include <string>
#include <variant>

namespace sgp_test {

using namespace sgp::quant;

inline int pick(sgp::rng& r, int lo, int hi) {
    return lo + static_cast<int>(r.next() % static_cast<std::uint64_t>(hi - lo + 1));
}

// Integer weights over the whole int8 range; fix points anywhere the DPU's limits allow,
// including biases finer than the products (negative shift_bias).
inline void random_tensors(qconv& c, int fp_in, sgp::rng& r) {
    const std::size_t n = c.cout * c.taps();
    c.qweight.resize(n);
    c.weight.resize(n);
    for (auto& w : c.qweight) w = static_cast<std::int8_t>(pick(r, -128, 127));
    c.qbias.resize(c.cout);
    c.bias.resize(c.cout);
    for (auto& b : c.qbias) b = static_cast<std::int8_t>(pick(r, -128, 127));
    c.fp_w = pick(r, 3, 9);
    const int cut = pick(r, 0, 16);
    c.fp_out = fp_in + c.fp_w - cut;
    const int sb = pick(r, std::min(0, cut - 16), 16);
    c.fp_b = fp_in + c.fp_w - sb;
    const auto s = shifts_of(c, fp_in);
    REQUIRE(s.cut == cut);
    REQUIRE(s.bias == sb);
}

// conv (k 1/3/5, stride 1/2, pad 0-2) x 1-3, an optional 2x2 pool, then optionally a flatten
// and one or two linear layers (1x1 convolutions of a 1x1 map).
inline qmodel random_model(std::uint64_t seed) {
    sgp::rng r(seed);
    qmodel m;
    m.c = static_cast<std::size_t>(pick(r, 1, 7));
    m.h = static_cast<std::size_t>(pick(r, 1, 13));
    m.w = static_cast<std::size_t>(pick(r, 1, 13));
    m.fp_in = pick(r, 0, 6);
    std::size_t c = m.c, h = m.h, w = m.w;
    int fp = m.fp_in;
    const int convs = pick(r, 1, 3);
    for (int i = 0; i < convs; ++i) {
        qconv q;
        q.cin = c, q.h = h, q.w = w;
        q.cout = static_cast<std::size_t>(pick(r, 1, 40));
        q.pad = static_cast<std::size_t>(pick(r, 0, 2));
        q.k = std::size_t{1} + 2 * static_cast<std::size_t>(pick(r, 0, 2));
        while (q.k > std::min(h, w) + 2 * q.pad) q.k -= 2;
        q.stride = static_cast<std::size_t>(pick(r, 1, 2));
        q.oh = (h + 2 * q.pad - q.k) / q.stride + 1;
        q.ow = (w + 2 * q.pad - q.k) / q.stride + 1;
        q.act = r.next() % 3 != 0 ? activation::relu : activation::none;
        random_tensors(q, fp, r);
        fp = q.fp_out;
        c = q.cout, h = q.oh, w = q.ow;
        m.add(std::move(q));
    }
    if (h >= 2 && w >= 2 && r.next() % 2) {
        qmax_pool p;  // 2x2 / 2, or overlapping windows (3x3 / 2, 2x2 / 1)
        p.k = std::min<std::size_t>({h, w, static_cast<std::size_t>(pick(r, 2, 3))});
        p.stride = static_cast<std::size_t>(pick(r, 1, 2));
        p.c = c, p.h = h, p.w = w, p.oh = (h - p.k) / p.stride + 1, p.ow = (w - p.k) / p.stride + 1;
        h = p.oh, w = p.ow;
        p.fp_out = fp;
        m.add(std::move(p));
    }
    if (r.next() % 2) {
        std::size_t features = c * h * w;
        for (int i = pick(r, 1, 2); i > 0; --i) {
            qconv q;
            q.cin = features, q.cout = static_cast<std::size_t>(pick(r, 1, 70));
            q.act = i > 1 ? activation::relu : activation::none;
            random_tensors(q, fp, r);
            fp = q.fp_out;
            features = q.cout;
            m.add(std::move(q));
        }
    }
    // Layer indices as a network's (distinct: the exported op names derive from them).
    for (std::size_t i = 0; i < m.ops.size(); ++i) base_of(m.ops[i]).layer = 2 * i + 1;
    return m;
}

// A conv op of the graph fixtures below reading tensor `in` of m.
inline std::size_t add_conv(qmodel& m, std::size_t in, std::size_t cout, std::size_t k, std::size_t stride,
                            std::size_t pad, activation act, bool depthwise, sgp::rng& r) {
    const auto d = m.dims(in);
    qconv q;
    q.cin = d.c, q.h = d.h, q.w = d.w;
    q.cout = depthwise ? d.c : cout;
    q.groups = depthwise ? d.c : 1;
    q.pad = pad, q.k = k, q.stride = stride;
    while (q.k > std::min(d.h, d.w) + 2 * q.pad) q.k -= 2;
    q.pad = std::min(q.pad, q.k - 1);
    q.oh = (d.h + 2 * q.pad - q.k) / q.stride + 1;
    q.ow = (d.w + 2 * q.pad - q.k) / q.stride + 1;
    q.act = act;
    random_tensors(q, m.fix_point(in), r);
    return m.add(std::move(q), {in});
}

// A random calibrated graph over the ops beyond chains: residual adds (identity, or with a 1x1
// projection; inputs at fix points up to 15 apart, outputs finer or coarser by up to 15),
// depthwise convolutions (ReLU6, ReLU or none; stride 1 or 2), average pools of every window
// size that fits, max pools, concats of two or three branches, a global average pool and a
// linear layer. Fix points start anywhere and are then brought inside the DPU's rules by the
// calibrator's own pass (moves that this fixture then checks, see test_qgraph.cpp).
inline qmodel random_graph(std::uint64_t seed) {
    sgp::rng r(seed);
    qmodel m;
    m.c = static_cast<std::size_t>(pick(r, 1, 6));
    m.h = static_cast<std::size_t>(pick(r, 4, 14));
    m.w = static_cast<std::size_t>(pick(r, 4, 14));
    m.fp_in = pick(r, 0, 6);
    auto act = [&] { return std::array{activation::none, activation::relu, activation::relu6}[r.next() % 3]; };
    std::size_t t = add_conv(m, 0, static_cast<std::size_t>(pick(r, 1, 24)), 3, 1, 1, act(), false, r);
    const int blocks = pick(r, 2, 5);
    for (int b = 0; b < blocks; ++b) {
        const auto d = m.dims(t);
        switch (r.next() % 5) {
            case 0: {  // residual
                const std::size_t body = add_conv(m, t, d.c, 3, 1, 1, act(), r.next() % 2 == 0, r);
                std::size_t sc = t;
                if (r.next() % 2) sc = add_conv(m, t, d.c, 1, 1, 0, activation::none, false, r);
                qadd a;
                a.c = d.c, a.h = d.h, a.w = d.w;
                a.act = r.next() % 2 ? activation::relu : activation::none;
                const int lo = std::min(m.fix_point(body), m.fix_point(sc));
                a.fp_out = lo + pick(r, -15, 15);
                t = m.add(std::move(a), {body, sc});
                break;
            }
            case 1:  // depthwise
                t = add_conv(m, t, 0, 3, static_cast<std::size_t>(pick(r, 1, 2)), 1, act(), true, r);
                break;
            case 2: {  // average or max pool
                if (d.h < 2 || d.w < 2) break;
                const auto k = static_cast<std::size_t>(pick(r, 1, static_cast<int>(std::min(d.h, d.w))));
                const auto s = static_cast<std::size_t>(pick(r, 1, static_cast<int>(k)));
                auto fill = [&](auto p) {
                    p.c = d.c, p.h = d.h, p.w = d.w, p.k = k, p.stride = s;
                    p.oh = (d.h - k) / s + 1, p.ow = (d.w - k) / s + 1;
                    p.fp_out = m.fix_point(t);
                    return p;
                };
                t = r.next() % 3 ? m.add(fill(qavg_pool{}), {t}) : m.add(fill(qmax_pool{}), {t});
                break;
            }
            case 3: {  // concat of branches
                qconcat k;
                std::vector<std::size_t> parts;
                const int n = pick(r, 2, 3);
                for (int j = 0; j < n; ++j) {
                    parts.push_back(j == 0 && r.next() % 2 ? t
                                                           : add_conv(m, t, static_cast<std::size_t>(pick(r, 1, 12)), 1,
                                                                      1, 0, act(), false, r));
                    k.channels.push_back(m.dims(parts.back()).c);
                }
                k.h = d.h, k.w = d.w;
                k.fp_out = m.fix_point(parts[0]);
                t = m.add(std::move(k), parts);
                break;
            }
            default:
                t = add_conv(m, t, static_cast<std::size_t>(pick(r, 1, 40)), 3, static_cast<std::size_t>(pick(r, 1, 2)),
                             1, act(), false, r);
        }
    }
    if (r.next() % 2) {  // global average pool and a linear layer
        const auto d = m.dims(t);
        qavg_pool p;
        p.c = d.c, p.h = d.h, p.w = d.w, p.k = std::min(d.h, d.w), p.stride = 1;
        p.oh = (d.h - p.k) + 1, p.ow = (d.w - p.k) + 1;
        p.fp_out = m.fix_point(t);
        t = m.add(std::move(p), {t});
        const auto f = m.dims(t);
        qconv q;
        q.cin = f.size(), q.cout = static_cast<std::size_t>(pick(r, 1, 20));
        random_tensors(q, m.fix_point(t), r);
        m.add(std::move(q), {t});
    }
    for (std::size_t i = 0; i < m.ops.size(); ++i) base_of(m.ops[i]).layer = 2 * i + 1;
    enforce_fix_rules(m);
    return m;
}

// A network's qmodel: its statistics and weights moved off their initial values (seeded), then
// folded and calibrated on a few random images.
// Trained-looking statistics: running mean / var and affine parameters moved off their init.
template <class Net>
void perturb(Net& net, sgp::rng& r) {
    net.for_each_tensor([&](const std::string& k, const sgp::tensor_ref& t) {
        if (!t.value) return;
        for (std::size_t i = 0; i < t.size(); ++i)
            t.value[i] = k.find("running_var") != std::string::npos ? 0.5f + std::abs(r.normal())
                                                                    : t.value[i] + 0.1f * r.normal();
    });
}

template <class Net>
qmodel calibrated_fold(Net& net, std::uint64_t seed) {
    sgp::rng r(seed);
    perturb(net, r);
    auto m = fold(net);
    calibrator cal(m);
    std::vector<float> x(Net::input_shape.size());
    for (int k = 0; k < 4; ++k) {
        for (auto& v : x) v = r.normal();
        cal.observe(x.data());
    }
    cal.finish();
    return m;
}

}  // namespace sgp_test
