#pragma once
// Random calibrated qmodels for the int8 and xmodel tests: many geometries, fix points
// anywhere the DPU's limits allow, integer weights over the whole int8 range.
#include <doctest/doctest.h>

#include <algorithm>
#include <sgp/core/rng.hpp>
#include <sgp/quant/calibrate.hpp>
#include <variant>

namespace sgp_test {

using namespace sgp::quant;

inline int pick(sgp::rng& r, int lo, int hi) {
    return lo + static_cast<int>(r.next() % static_cast<std::uint64_t>(hi - lo + 1));
}

// Integer weights over the whole int8 range; fix points anywhere the DPU's limits allow,
// including biases finer than the products (negative shift_bias).
inline void random_tensors(qconv& c, int fp_in, sgp::rng& r) {
    const std::size_t n = c.cout * c.cin * c.k * c.k;
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
        q.relu = r.next() % 3 != 0;
        random_tensors(q, fp, r);
        fp = q.fp_out;
        c = q.cout, h = q.oh, w = q.ow;
        m.ops.emplace_back(std::move(q));
    }
    if (h >= 2 && w >= 2 && r.next() % 2) {
        qmax_pool p;  // 2x2 / 2, or overlapping windows (3x3 / 2, 2x2 / 1)
        p.k = std::min<std::size_t>({h, w, static_cast<std::size_t>(pick(r, 2, 3))});
        p.stride = static_cast<std::size_t>(pick(r, 1, 2));
        p.c = c, p.h = h, p.w = w, p.oh = (h - p.k) / p.stride + 1, p.ow = (w - p.k) / p.stride + 1;
        h = p.oh, w = p.ow;
        m.ops.emplace_back(p);
    }
    if (r.next() % 2) {
        std::size_t features = c * h * w;
        for (int i = pick(r, 1, 2); i > 0; --i) {
            qconv q;
            q.cin = features, q.cout = static_cast<std::size_t>(pick(r, 1, 70));
            q.relu = i > 1;
            random_tensors(q, fp, r);
            fp = q.fp_out;
            features = q.cout;
            m.ops.emplace_back(std::move(q));
        }
    }
    // Layer indices as a network's (distinct: the exported op names derive from them).
    for (std::size_t i = 0; i < m.ops.size(); ++i) std::visit([&](auto& op) { op.layer = 2 * i + 1; }, m.ops[i]);
    return m;
}

}  // namespace sgp_test
