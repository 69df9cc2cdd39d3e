#pragma once
// Integer-only inference of a calibrated qmodel, following the DPU's conv2d-fix arithmetic
// step by step: int8 input (DPU_ROUND of x * 2^fp_in), int32 accumulation of int8 x int8,
// the bias shifted by shift_bias, the sum shifted down by shift_cut with DPU_ROUND, ReLU,
// saturation to int8; max pool on int8; the last op's output dequantized to float. Plain
// loops: the reference that the fast int8 path must match bit for bit.
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::target {

// One conv2d-fix on int8 [cin][h][w] -> int8 [cout][oh][ow].
inline void conv2d_fix_reference(const quant::qconv& c, int fp_in, const std::int8_t* x, std::int8_t* y) {
    const auto [cut, sb] = quant::shifts_of(c, fp_in);
    const std::size_t taps = c.cin * c.k * c.k;
    for (std::size_t o = 0; o < c.cout; ++o)
        for (std::size_t oy = 0; oy < c.oh; ++oy)
            for (std::size_t ox = 0; ox < c.ow; ++ox) {
                std::int32_t acc = 0;
                for (std::size_t ci = 0; ci < c.cin; ++ci)
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
                                   x[(ci * c.h + static_cast<std::size_t>(iy)) * c.w + static_cast<std::size_t>(ix)];
                        }
                // acc + b * 2^sb, over 2^cut; with sb < 0 both sides scaled by 2^-sb (exact).
                const std::int64_t b = c.qbias[o];
                std::int64_t v = sb >= 0 ? quant::dpu_shift_round(acc + b * (std::int64_t{1} << sb), cut)
                                         : quant::dpu_shift_round(acc * (std::int64_t{1} << -sb) + b, cut - sb);
                if (c.relu) v = std::max<std::int64_t>(v, 0);
                y[(o * c.oh + oy) * c.ow + ox] = quant::saturate(v);
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

// The whole network on one image x ([C][H][W] float); out: m.outputs() floats.
class int8_reference {
public:
    explicit int8_reference(const quant::qmodel& m) : m_(m) {
        int fp = m.fp_in;
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<quant::qconv>(&m.ops[i])) {
                quant::require_calibrated(*c, "int8_reference");
                quant::checked_shifts(*c, fp, "int8_reference", i);
                fp = c->fp_out;
            }
    }

    void run(const float* x, float* out) {
        run(x, out, [](std::size_t, const std::vector<std::int8_t>&, int) {});
    }
    // The same, calling after_op(i, y, fp) with op i's int8 output y at fix point fp
    // (per-op error against float, analysis/sqnr.hpp).
    template <std::invocable<std::size_t, const std::vector<std::int8_t>&, int> F>
    void run(const float* x, float* out, F&& after_op) {
        const std::size_t n = m_.c * m_.h * m_.w;
        a_.resize(n);
        for (std::size_t i = 0; i < n; ++i) a_[i] = quant::quantize(x[i], m_.fp_in);
        int fp = m_.fp_in;
        for (const auto& op : m_.ops) {
            if (const auto* c = std::get_if<quant::qconv>(&op)) {
                b_.resize(c->cout * c->oh * c->ow);
                conv2d_fix_reference(*c, fp, a_.data(), b_.data());
                fp = c->fp_out;
            } else {
                const auto& p = std::get<quant::qmax_pool>(op);
                b_.resize(p.c * p.oh * p.ow);
                max_pool_reference(p, a_.data(), b_.data());
            }
            a_.swap(b_);
            after_op(static_cast<std::size_t>(&op - m_.ops.data()), std::as_const(a_), fp);
        }
        for (std::size_t i = 0; i < a_.size(); ++i) out[i] = quant::dequantize(a_[i], fp);
    }
    // The int8 output of the last run (before dequantisation).
    const std::vector<std::int8_t>& last_output() const { return a_; }

private:
    const quant::qmodel& m_;
    std::vector<std::int8_t> a_, b_;
};

}  // namespace sgp::target
