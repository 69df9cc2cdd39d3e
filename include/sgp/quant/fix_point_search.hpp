#pragma once
// Fix points chosen for the network's output rather than tensor by tensor.
//
// Calibration (quant/calibrate.hpp) picks each tensor's fix point from that tensor's own
// values. In a thin network (a pruned one: layers of 2 to 16 channels) one power-of-two step
// too coarse or too fine in one tensor costs more at the output than the per-tensor error
// says. This search starts from a calibrated model and moves one fix point at a time by one
// step (an activation, with the tensors the rules tie to it, or a conv's weights) while the
// int8 network's output, computed with the DPU's own arithmetic (target/int8_target.hpp),
// gets closer to the float network's on the images given: coordinate descent on the mean
// Kullback-Leibler divergence between the two softmax outputs, no labels needed. Every
// candidate keeps every rule of the DPU (a move that breaks one is not tried), and every move
// kept is recorded in qmodel::adjustments with the loss before and after.
//
// The images must come from the training set (or any set held out of the test set): the
// search is a decision on data.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/qmodel.hpp"
#include "sgp/target/int8_target.hpp"

namespace sgp::quant {

struct search_options {
    std::size_t sweeps = 4;  // at most this many passes over every fix point
    double min_gain = 1e-3;  // a move must lower the loss by this fraction of it
    bool verbose = false;    // one line per kept move on stdout
};

struct search_result {
    double loss_before = 0, loss_after = 0;  // mean KL(float || int8) over the images
    std::size_t evaluations = 0, moves = 0, sweeps = 0;
};

namespace detail {

// Tensors whose fix points the rules tie together (a pool's input and output, a concat's
// inputs and output), as groups of tensor ids: a move shifts a whole group.
inline std::vector<std::vector<std::size_t>> tied_tensors(const qmodel& m) {
    std::vector<std::size_t> root(m.tensor_count());
    std::iota(root.begin(), root.end(), std::size_t{0});
    auto find = [&](std::size_t t) {
        while (root[t] != t) t = root[t] = root[root[t]];
        return t;
    };
    auto join = [&](std::size_t a, std::size_t b) { root[find(a)] = find(b); };
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        std::visit(overloaded{[&](const qmax_pool& p) { join(p.inputs[0], i + 1); },
                              [&](const qavg_pool& p) { join(p.inputs[0], i + 1); },
                              [&](const qconcat& k) {
                                  for (auto t : k.inputs) join(t, i + 1);
                              },
                              [](const qconv&) {}, [](const qadd&) {}},
                   m.ops[i]);
    std::vector<std::vector<std::size_t>> groups(m.tensor_count());
    for (std::size_t t = 0; t < m.tensor_count(); ++t) groups[find(t)].push_back(t);
    std::erase_if(groups, [](const auto& g) { return g.empty(); });
    return groups;
}

inline void shift_fix_point(qmodel& m, std::size_t t, int by) {
    if (t == 0)
        m.fp_in += by;
    else
        base_of(m.ops[t - 1]).fp_out += by;
}

// A bias at the finest fix point that holds it and that the conv's shift_bias limits allow
// (nothing else reads it).
inline void fit_bias(qmodel& m, std::size_t i) {
    auto& c = std::get<qconv>(m.ops[i]);
    const int fp_in = m.fp_input(i), cut = fp_in + c.fp_w - c.fp_out;
    const int sb = fp_in + c.fp_w - max_abs_fix_point(max_abs_of(c.bias));
    c.fp_b = fp_in + c.fp_w - std::clamp(sb, std::min(0, cut - 16), 16);
}

// Softmax of n logits, in doubles.
inline void softmax(const float* z, std::size_t n, double* p) {
    double hi = z[0], s = 0;
    for (std::size_t k = 1; k < n; ++k) hi = std::max(hi, static_cast<double>(z[k]));
    for (std::size_t k = 0; k < n; ++k) s += p[k] = std::exp(static_cast<double>(z[k]) - hi);
    for (std::size_t k = 0; k < n; ++k) p[k] /= s;
}

// KL(f || softmax(z)) and, when grad is given, its gradient (softmax(z) - f) * scale.
inline double kl_to(const double* f, const float* z, std::size_t k, double* p, float* grad, double scale) {
    softmax(z, k, p);
    double sum = 0;
    for (std::size_t j = 0; j < k; ++j) {
        if (f[j] > 0) sum += f[j] * (std::log(f[j]) - std::log(std::max(p[j], 1e-300)));
        if (grad) grad[j] = static_cast<float>((p[j] - f[j]) * scale);
    }
    return sum;
}

}  // namespace detail

// The search on a calibrated model m (calibrator::finish done). `images` holds n images
// [C][H][W] one after another. Returns the loss before and after; m keeps the best fix points
// found, with its int8 weights requantized.
inline search_result search_fix_points(qmodel& m, const float* images, std::size_t n, const search_options& o = {}) {
    const std::string where = "quant::search_fix_points";
    validate_calibrated(m, where);
    if (n == 0) fail(where, "no image to search on");
    const std::size_t in = m.c * m.h * m.w, k = m.outputs();
    // The float network's output distribution, once.
    std::vector<double> target(n * k);
    {
        std::vector<std::vector<float>> acts;
        for (std::size_t i = 0; i < n; ++i) {
            float_forward(m, images + i * in, acts);
            detail::softmax(acts.back().data(), k, target.data() + i * k);
        }
    }
    std::vector<float> out(k);
    std::vector<double> p(k);
    search_result r;
    auto loss = [&](const qmodel& q) {
        ++r.evaluations;
        target::int8_target t(q);
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
            t.run(images + i * in, out.data());
            sum += detail::kl_to(target.data() + i * k, out.data(), k, p.data(), nullptr, 0);
        }
        return sum / static_cast<double>(n);
    };
    auto rules_hold = [](const qmodel& q) {
        for (std::size_t i = 0; i < q.ops.size(); ++i)
            if (!fix_rule_violation(q, i).empty()) return false;
        return true;
    };
    // Only the convs whose input, output or weight fix point the move changed get a new bias
    // fix point and new int8 tensors; every other one is already what a refit would give.
    auto refit = [&m](qmodel& q) {
        for (std::size_t i = 0; i < q.ops.size(); ++i)
            if (auto* c = std::get_if<qconv>(&q.ops[i])) {
                const auto& was = std::get<qconv>(m.ops[i]);
                if (q.fp_input(i) == m.fp_input(i) && c->fp_out == was.fp_out && c->fp_w == was.fp_w) continue;
                detail::fit_bias(q, i);
                calibrator::quantize_tensors(*c);
            }
    };

    const auto groups = detail::tied_tensors(m);
    double best = r.loss_before = loss(m);
    // A candidate: a move of one group of tensors, or of one conv's weights, by -1 or +1; the
    // first that lowers the loss is kept and recorded as op `op`'s `tensor` from -> from + by.
    auto try_move = [&](auto&& apply, std::size_t op, const char* tensor, int from) {
        for (int by : {-1, +1}) {
            qmodel q = m;
            apply(q, by);
            refit(q);
            if (!rules_hold(q)) continue;
            const double l = loss(q);
            if (!(l < best * (1 - o.min_gain))) continue;
            char why[96];
            std::snprintf(why, sizeof why, "fix-point search: mean KL to float %.6g -> %.6g", best, l);
            if (o.verbose) std::printf("  op %zu %s %d -> %d: %s\n", op, tensor, from, from + by, why);
            q.adjustments.push_back({op, tensor, from, from + by, why});
            m = std::move(q);
            best = l;
            ++r.moves;
            return;
        }
    };
    while (r.sweeps < o.sweeps) {
        ++r.sweeps;
        const std::size_t before = r.moves;
        for (const auto& g : groups)
            try_move(
                [&](qmodel& q, int by) {
                    for (auto t : g) detail::shift_fix_point(q, t, by);
                },
                g.front() == 0 ? 0 : g.front() - 1, g.front() == 0 ? "input" : "output", m.fix_point(g.front()));
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<qconv>(&m.ops[i]))
                try_move([&](qmodel& q, int by) { std::get<qconv>(q.ops[i]).fp_w += by; }, i, "weights", c->fp_w);
        if (r.moves == before) break;
    }
    r.loss_after = best;
    return r;
}

}  // namespace sgp::quant
