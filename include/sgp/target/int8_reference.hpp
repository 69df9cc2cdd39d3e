#pragma once
// Integer-only inference of a calibrated qmodel, following the DPU's arithmetic step by step
// (quant/dpu_arithmetic.hpp has the rules and their sources): int8 input (DPU_ROUND of
// x * 2^fp_in); conv2d-fix and depthwise-conv2d-fix as int32 sums of int8 x int8, the bias
// shifted by shift_bias, the sum shifted down by shift_cut with DPU_ROUND, the activation,
// saturation to int8; max pool on int8; average pool as a sum times a constant and a shift;
// eltwise add aligned by shifts; concat as a copy; the last op's output dequantized to
// float. Plain loops over [C][H][W]: the reference the fast int8 path must match bit for bit.
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/dpu_arithmetic.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::target {

// One conv2d-fix (or depthwise-conv2d-fix) on int8 [cin][h][w] -> int8 [cout][oh][ow].
inline void conv2d_fix_reference(const quant::qconv& c, int fp_in, const std::int8_t* x, std::int8_t* y) {
    const auto [cut, sb] = quant::shifts_of(c, fp_in);
    const std::size_t taps = c.taps(), gin = c.cin / c.groups, gout = c.cout / c.groups;
    for (std::size_t o = 0; o < c.cout; ++o) {
        const std::size_t c0 = o / gout * gin;
        for (std::size_t oy = 0; oy < c.oh; ++oy)
            for (std::size_t ox = 0; ox < c.ow; ++ox) {
                std::int32_t acc = 0;
                for (std::size_t ci = 0; ci < gin; ++ci)
                    for (std::size_t ky = 0; ky < c.k; ++ky)
                        for (std::size_t kx = 0; kx < c.k; ++kx) {
                            const auto iy =
                                static_cast<std::ptrdiff_t>(oy * c.stride + ky) - static_cast<std::ptrdiff_t>(c.pad);
                            const auto ix =
                                static_cast<std::ptrdiff_t>(ox * c.stride + kx) - static_cast<std::ptrdiff_t>(c.pad);
                            if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(c.h) ||
                                ix >= static_cast<std::ptrdiff_t>(c.w))
                                continue;
                            acc += static_cast<std::int32_t>(c.qweight[o * taps + (ci * c.k + ky) * c.k + kx]) *
                                   x[((c0 + ci) * c.h + static_cast<std::size_t>(iy)) * c.w +
                                     static_cast<std::size_t>(ix)];
                        }
                y[(o * c.oh + oy) * c.ow + ox] = quant::dpu::conv_output(acc, c.qbias[o], cut, sb, c.act, c.fp_out);
            }
    }
}

inline void max_pool_reference(const quant::qmax_pool& p, const std::int8_t* x, std::int8_t* y) {
    for (std::size_t ch = 0; ch < p.c; ++ch)
        for (std::size_t oy = 0; oy < p.oh; ++oy)
            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                std::int8_t v = x[(ch * p.h + oy * p.stride) * p.w + ox * p.stride];
                for (std::size_t ky = 0; ky < p.k; ++ky)
                    for (std::size_t kx = 0; kx < p.k; ++kx)
                        v = std::max(v, x[(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx]);
                y[(ch * p.oh + oy) * p.ow + ox] = v;
            }
}

inline void avg_pool_reference(const quant::qavg_pool& p, const std::int8_t* x, std::int8_t* y) {
    const auto scale = quant::dpu::avg_pool_scale(p.k, p.k);
    for (std::size_t ch = 0; ch < p.c; ++ch)
        for (std::size_t oy = 0; oy < p.oh; ++oy)
            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                std::int64_t sum = 0;
                for (std::size_t ky = 0; ky < p.k; ++ky)
                    for (std::size_t kx = 0; kx < p.k; ++kx)
                        sum += x[(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx];
                y[(ch * p.oh + oy) * p.ow + ox] = quant::dpu::avg_pool_output(sum, scale);
            }
}

// The whole network on one image x ([C][H][W] float); out: m.outputs() floats.
class int8_reference {
public:
    explicit int8_reference(const quant::qmodel& m) : m_(m) { quant::validate_calibrated(m, "int8_reference"); }

    void run(const float* x, float* out) {
        run(x, out, [](std::size_t, const std::vector<std::int8_t>&, int) {});
    }
    // The same, calling after_op(i, y, fp) with op i's int8 output y at fix point fp
    // (per-op error against float, analysis/sqnr.hpp).
    template <std::invocable<std::size_t, const std::vector<std::int8_t>&, int> F>
    void run(const float* x, float* out, F&& after_op) {
        t_.resize(m_.tensor_count());
        t_[0].resize(m_.c * m_.h * m_.w);
        for (std::size_t i = 0; i < t_[0].size(); ++i) t_[0][i] = quant::quantize(x[i], m_.fp_in);
        for (std::size_t i = 0; i < m_.ops.size(); ++i) {
            const auto& in = quant::base_of(m_.ops[i]).inputs;
            auto& y = t_[i + 1];
            y.resize(quant::out_of(m_.ops[i]).size());
            std::visit(quant::overloaded{
                           [&](const quant::qconv& c) {
                               conv2d_fix_reference(c, m_.fix_point(in[0]), t_[in[0]].data(), y.data());
                           },
                           [&](const quant::qmax_pool& p) { max_pool_reference(p, t_[in[0]].data(), y.data()); },
                           [&](const quant::qavg_pool& p) { avg_pool_reference(p, t_[in[0]].data(), y.data()); },
                           [&](const quant::qadd& a) {
                               std::vector<int> fps;
                               for (auto t : in) fps.push_back(m_.fix_point(t));
                               const auto shifts = quant::dpu::add_shifts(fps, a.fp_out);
                               for (std::size_t j = 0; j < y.size(); ++j) {
                                   std::int64_t acc = 0;
                                   for (std::size_t k = 0; k < in.size(); ++k)
                                       acc += quant::dpu::add_term(t_[in[k]][j], shifts.read[k]);
                                   y[j] = quant::dpu::add_output(acc, shifts.write, a.act);
                               }
                           },
                           [&](const quant::qconcat&) {
                               std::size_t at = 0;
                               for (auto t : in) {
                                   std::copy(t_[t].begin(), t_[t].end(), y.begin() + static_cast<std::ptrdiff_t>(at));
                                   at += t_[t].size();
                               }
                           }},
                       m_.ops[i]);
            after_op(i, std::as_const(y), m_.fix_point(i + 1));
        }
        const auto& last = t_.back();
        const int fp = m_.fix_point(m_.output_tensor());
        for (std::size_t i = 0; i < last.size(); ++i) out[i] = quant::dequantize(last[i], fp);
    }
    // The int8 output of the last run (before dequantisation).
    const std::vector<std::int8_t>& last_output() const { return t_.back(); }

private:
    const quant::qmodel& m_;
    std::vector<std::vector<std::int8_t>> t_;  // every tensor of the last run
};

}  // namespace sgp::target
