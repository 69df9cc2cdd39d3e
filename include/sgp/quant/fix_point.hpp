#pragma once
// The DPU's number format: per-tensor, symmetric, power-of-two fixed point. A value v is
// stored as the int8 q = clamp(round(v * 2^fp), -128, 127) and read back as q * 2^-fp; fp is
// the tensor's fix point. Rounding is DPU_ROUND, half up (-2.5 -> -2, 2.5 -> 3), in the
// quantizer and in every requantisation of the DPU.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace sgp::quant {

inline constexpr int qmin = -128, qmax = 127;

// floor(x + 0.5): DPU_ROUND of a real value.
inline double dpu_round(double x) {
    return std::floor(x + 0.5);
}

// DPU_ROUND(t / 2^s) for an integer t, in integers: an arithmetic shift with the half added
// first (for s > 0), or a left shift (s <= 0). Exact for every int64 t whose result fits.
constexpr std::int64_t dpu_shift_round(std::int64_t t, int s) {
    if (s <= 0) return t * (std::int64_t{1} << -s);
    return (t + (std::int64_t{1} << (s - 1))) >> s;  // >> of a negative value floors (C++20)
}

constexpr std::int8_t saturate(std::int64_t v) {
    return static_cast<std::int8_t>(std::clamp<std::int64_t>(v, qmin, qmax));
}

inline std::int8_t quantize(float v, int fp) {
    const double q = dpu_round(static_cast<double>(v) * std::ldexp(1.0, fp));
    if (!(q >= qmin)) return std::isnan(q) ? 0 : static_cast<std::int8_t>(qmin);
    return static_cast<std::int8_t>(std::min<double>(q, qmax));
}
inline float dequantize(std::int8_t q, int fp) {
    return static_cast<float>(std::ldexp(static_cast<double>(q), -fp));
}
// fix(v): the value the DPU sees for v.
inline float fix(float v, int fp) {
    return dequantize(quantize(v, fp), fp);
}

// The largest fix point at which `max_abs` still fits in int8 (rounded, 127 at most), within
// the DPU's range of fix points; 0's fix point is the top of the range.
inline int max_abs_fix_point(double max_abs, int lo = -16, int hi = 16) {
    if (!(max_abs > 0)) return hi;
    // max_abs * 2^fp rounds to at most 127  <=>  max_abs * 2^fp < 127.5
    int fp = static_cast<int>(std::floor(std::log2(127.5 / max_abs)));
    while (fp > lo && max_abs * std::ldexp(1.0, fp) >= 127.5) --fp;
    while (fp < hi && max_abs * std::ldexp(1.0, fp + 1) < 127.5) ++fp;
    return std::clamp(fp, lo, hi);
}

// Sum of squared quantisation errors of `values` at fix point fp.
inline double quantization_error(std::span<const float> values, int fp) {
    double e = 0;
    for (float v : values) {
        const double d = static_cast<double>(fix(v, fp)) - v;
        e += d * d;
    }
    return e;
}

// The fix point with the least squared error over `values`, searched from the max-abs one
// upwards (finer steps that clip the largest values: worth it for long-tailed activations).
inline int mse_fix_point(std::span<const float> values, int lo = -16, int hi = 16) {
    double m = 0;
    for (float v : values) m = std::max(m, static_cast<double>(std::abs(v)));
    const int start = max_abs_fix_point(m, lo, hi);
    int best = start;
    double best_e = quantization_error(values, start);
    for (int fp = start + 1; fp <= std::min(hi, start + 4); ++fp) {
        const double e = quantization_error(values, fp);
        if (e < best_e) best = fp, best_e = e;
    }
    return best;
}

}  // namespace sgp::quant
