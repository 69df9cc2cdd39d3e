#pragma once
// The DPU's integer arithmetic per op, one element at a time: the specification that the
// reference (target/int8_reference.hpp) applies in plain loops and the fast path
// (target/int8_target.hpp) reproduces in vectors. The rules are those of Vitis AI's reference
// CPU implementation of the DPU's ops (VART's cpu-runner: cpu-runner/src/op/conv2d_fix.cpp,
// dwconv_fix.cpp, eltwise_fix.cpp, pool_fix.cpp, concat_fix.cpp, include/cpu_util.hpp, public
// under Apache-2.0 with the Vitis AI runtime) and of its quantizer (vai_q_pytorch,
// nndct_shared/utils/dpu_utils.py); docs/quantization.md lists them with their sources.
// Every rounding is DPU_ROUND, floor(x + 1/2) (the default round_mode of every *-fix op);
// every result saturates to [-128, 127].
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::quant::dpu {

// ReLU6 as the DPU fuses it (conv2d-fix, depthwise-conv2d-fix): negative values become 0 and,
// when the output's fix point is 4 or less, values clamp at 96, 6.0 at fix point 4. At fix
// points above 4 the int8 range ends below 6.0; below 4 the hardware still clamps at 96 (12.0
// at fix point 3), which is what sgp reproduces (calibration keeps such outputs rare: a
// ReLU6's natural fix point is 4 or finer).
inline constexpr std::int64_t relu6_cap = 6 << 4;

// The int8 values an op's output can take after its activation and the saturation, [lo, hi]:
// where the DPU clips (the fast path's clamp bounds, and where QAT stops a gradient).
struct output_range {
    std::int64_t lo = qmin, hi = qmax;
};
constexpr output_range activation_range(activation a, int fp_out) {
    return {a == activation::none ? std::int64_t{qmin} : 0,
            a == activation::relu6 && fp_out <= 4 ? relu6_cap : std::int64_t{qmax}};
}

// The activation and the saturation on the rounded sum (the same as on the real value before
// rounding: the bounds are integers and DPU_ROUND is monotonic).
constexpr std::int8_t activate(std::int64_t v, activation a, int fp_out) {
    const auto r = activation_range(a, fp_out);
    return static_cast<std::int8_t>(std::clamp(v, r.lo, r.hi));
}

// conv2d-fix / depthwise-conv2d-fix: DPU_ROUND((acc + bias 2^shift_bias) / 2^shift_cut), the
// activation, saturation. With shift_bias < 0 the bias's fraction is kept (the hardware adds
// it before the one rounding): both sides scale by 2^-shift_bias, exactly.
constexpr std::int8_t conv_output(std::int64_t acc, std::int64_t bias, int cut, int sb, activation a, int fp_out) {
    const std::int64_t v = sb >= 0 ? dpu_shift_round(acc + bias * (std::int64_t{1} << sb), cut)
                                   : dpu_shift_round(acc * (std::int64_t{1} << -sb) + bias, cut - sb);
    return activate(v, a, fp_out);
}

// eltwise-fix ADD: each input read at the finest common step, 2^-(fp_min + 7): term_i =
// floor(q_i 2^(7 - shift_read_i)), shift_read_i = fp_i - fp_min; the sum is written at the
// output's fix point: DPU_ROUND(sum / 2^(shift_write + 7)), shift_write = fp_min - fp_out;
// then the ReLU.
struct eltwise_shifts {
    std::vector<int> read;
    int write = 0;
};
inline eltwise_shifts add_shifts(const std::vector<int>& fp_inputs, int fp_out) {
    const int lo = *std::min_element(fp_inputs.begin(), fp_inputs.end());
    eltwise_shifts s;
    for (int fp : fp_inputs) s.read.push_back(fp - lo);
    s.write = lo - fp_out;
    return s;
}
constexpr std::int64_t add_term(std::int8_t q, int shift_read) {
    const int s = 7 - shift_read;
    return s >= 0 ? std::int64_t{q} * (std::int64_t{1} << s) : std::int64_t{q} >> -s;  // >> floors (C++20)
}
constexpr std::int8_t add_output(std::int64_t sum, int shift_write, activation a) {
    return activate(dpu_shift_round(sum, shift_write + 7), a, 0);
}

// avgpool on the DPU: the window's sum times N / 2^M, rounded once, where N / 2^M
// approximates 1 / (kh kw) (pool-fix's get_avgpool_dpu_factors; the quantizer's
// get_avgpool_dpu_coeff scales the float average by kh kw N / 2^M to match). Input and output
// share the fix point, so no other shift enters.
struct avg_scale {
    std::int64_t n = 1;
    int m = 0;
};
// The special cases of the hardware (3x3, 5x5, 6x6, 7x7, 14x14), else the search both tools
// run: over shifts s = 0 .. ceil(log2(128 kh kw)) - 1, the first with the least error of
// round(2^s / (kh kw)) / 2^s against 1 / (kh kw). Powers of two come out exact (N = 1).
inline avg_scale avg_pool_scale(std::size_t kh, std::size_t kw) {
    if (kh == kw) {
        switch (kh) {
            case 3:
                return {7, 6};
            case 5:
                return {10, 8};
            case 6:
                return {7, 8};
            case 7:
                return {21, 10};
            case 14:
                return {21, 12};
            default:
                break;
        }
    }
    const double rec = static_cast<double>(kh * kw);
    // The tools compare in single precision (C++ float) or double (Python) and agree on every
    // area up to 1024; the search in double here is the same.
    const int shifts = static_cast<int>(std::ceil(std::log2(rec * 128.0)));
    avg_scale best{0, 0};
    double best_err = 1.0;
    for (int s = 0; s < shifts; ++s) {
        const double f = std::round(std::ldexp(1.0, s) / rec);
        const double err = std::abs(f / std::ldexp(1.0, s) - 1.0 / rec);
        if (err < best_err) best = {static_cast<std::int64_t>(f), s}, best_err = err;
    }
    return best;
}
constexpr std::int8_t avg_pool_output(std::int64_t sum, avg_scale s) {
    return saturate(dpu_shift_round(sum * s.n, s.m));
}

}  // namespace sgp::quant::dpu
