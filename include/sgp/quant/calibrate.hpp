#pragma once
// Fix points for a folded network (quant/qmodel.hpp): activations from calibration images run
// through the float network, weights and biases from their own values; then the DPU's shift
// limits enforced by moving fix points, each move recorded in qmodel::adjustments.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::quant {

enum class calibration {
    max_abs,  // the finest fix point that represents the largest value seen
    mse       // the fix point with the least squared error over the values seen
};

// The folded network in float on one image x ([C][H][W]); acts[i] is op i's output.
inline void float_forward(const qmodel& m, const float* x, std::vector<std::vector<float>>& acts) {
    acts.resize(m.ops.size());
    const float* in = x;
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        auto& out = acts[i];
        if (const auto* c = std::get_if<qconv>(&m.ops[i])) {
            out.assign(c->cout * c->oh * c->ow, 0.f);
            const std::size_t taps = c->cin * c->k * c->k;
            for (std::size_t o = 0; o < c->cout; ++o)
                for (std::size_t oy = 0; oy < c->oh; ++oy)
                    for (std::size_t ox = 0; ox < c->ow; ++ox) {
                        double s = c->bias[o];
                        for (std::size_t ci = 0; ci < c->cin; ++ci)
                            for (std::size_t ky = 0; ky < c->k; ++ky)
                                for (std::size_t kx = 0; kx < c->k; ++kx) {
                                    const auto iy = static_cast<std::ptrdiff_t>(oy * c->stride + ky) -
                                                    static_cast<std::ptrdiff_t>(c->pad);
                                    const auto ix = static_cast<std::ptrdiff_t>(ox * c->stride + kx) -
                                                    static_cast<std::ptrdiff_t>(c->pad);
                                    if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(c->h) ||
                                        ix >= static_cast<std::ptrdiff_t>(c->w))
                                        continue;
                                    s += static_cast<double>(c->weight[o * taps + (ci * c->k + ky) * c->k + kx]) *
                                         in[(ci * c->h + static_cast<std::size_t>(iy)) * c->w +
                                            static_cast<std::size_t>(ix)];
                                }
                        if (c->relu) s = std::max(s, 0.0);
                        out[(o * c->oh + oy) * c->ow + ox] = static_cast<float>(s);
                    }
        } else {
            const auto& p = std::get<qmax_pool>(m.ops[i]);
            out.assign(p.c * p.oh * p.ow, 0.f);
            for (std::size_t ch = 0; ch < p.c; ++ch)
                for (std::size_t oy = 0; oy < p.oh; ++oy)
                    for (std::size_t ox = 0; ox < p.ow; ++ox) {
                        float v = in[(ch * p.h + oy * p.stride) * p.w + ox * p.stride];
                        for (std::size_t ky = 0; ky < p.k; ++ky)
                            for (std::size_t kx = 0; kx < p.k; ++kx)
                                v = std::max(v, in[(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx]);
                        out[(ch * p.oh + oy) * p.ow + ox] = v;
                    }
        }
        in = out.data();
    }
}

namespace detail {
inline int fix_point_of(const std::vector<float>& values, double max_abs, calibration method) {
    return method == calibration::mse ? mse_fix_point(values) : max_abs_fix_point(max_abs);
}
inline double max_abs_of(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, static_cast<double>(std::abs(x)));
    return m;
}
}  // namespace detail

// Weights and bias at their fix points, after the DPU's limits on a conv2d-fix with input fix
// point fp_in: 0 <= shift_cut <= 16 and min(0, shift_cut - 16) <= shift_bias <= 16, where
// shift_cut = fp_in + fp_w - fp_out and shift_bias = fp_in + fp_w - fp_bias. A violated limit
// moves fp_out, fp_w or fp_bias (recorded in m.adjustments).
inline void enforce_limits(qmodel& m, std::size_t op, int fp_in) {
    auto& c = std::get<qconv>(m.ops[op]);
    auto move = [&](int& fp, int to, const char* tensor, const std::string& why) {
        m.adjustments.push_back({op, tensor, fp, to, why});
        fp = to;
    };
    int cut = fp_in + c.fp_w - c.fp_out;
    if (cut < 0) move(c.fp_out, fp_in + c.fp_w, "output", "shift_cut " + std::to_string(cut) + " < 0");
    cut = fp_in + c.fp_w - c.fp_out;
    if (cut > 16) move(c.fp_w, c.fp_w - (cut - 16), "weights", "shift_cut " + std::to_string(cut) + " > 16");
    cut = fp_in + c.fp_w - c.fp_out;
    const int sb = fp_in + c.fp_w - c.fp_b, lo = std::min(0, cut - 16);
    if (sb > 16) move(c.fp_b, fp_in + c.fp_w - 16, "bias", "shift_bias " + std::to_string(sb) + " > 16");
    if (sb < lo)
        move(c.fp_b, fp_in + c.fp_w - lo, "bias", "shift_bias " + std::to_string(sb) + " < " + std::to_string(lo));
}

// The shifts of a conv2d-fix whose input has fix point fp_in.
struct shifts {
    int cut, bias;
};
inline shifts shifts_of(const qconv& c, int fp_in) {
    return {fp_in + c.fp_w - c.fp_out, fp_in + c.fp_w - c.fp_b};
}

// The shifts of op `index`, refused when outside the DPU's limits (enforce_limits keeps a
// calibrated model inside them; a model from elsewhere, an imported file, may not be): an
// integer path must never shift by a count the hardware cannot, nor by one C++ cannot.
inline shifts checked_shifts(const qconv& c, int fp_in, const std::string& where, std::size_t index) {
    // In 64 bits: fix points from anywhere must not overflow on the way to the check.
    const std::int64_t cut = std::int64_t{fp_in} + c.fp_w - c.fp_out, bias = std::int64_t{fp_in} + c.fp_w - c.fp_b;
    if (cut < 0 || cut > 16 || bias > 16 || bias < std::min<std::int64_t>(0, cut - 16))
        fail(where, "op " + std::to_string(index) + ": shift_cut " + std::to_string(cut) + " and shift_bias " +
                        std::to_string(bias) +
                        " are outside the DPU's limits (0..16, min(0, shift_cut - 16)..16; run quant::enforce_limits)");
    return {static_cast<int>(cut), static_cast<int>(bias)};
}

// Collects activation statistics image by image, then sets every fix point.
class calibrator {
public:
    // `sample` values per activation are kept for the mean-squared-error search (every value
    // while there is room, then every k-th); the maximum is always exact.
    explicit calibrator(qmodel& m, calibration method = calibration::max_abs, std::size_t sample = 1u << 18)
        : m_(m),
          method_(method),
          sample_(sample),
          max_(m.ops.size() + 1, 0.0),
          values_(m.ops.size() + 1),
          seen_(m.ops.size() + 1, 0) {}

    // One image, [C][H][W].
    void observe(const float* x) {
        float_forward(m_, x, acts_);
        record(0, x, m_.c * m_.h * m_.w);
        for (std::size_t i = 0; i < acts_.size(); ++i) record(i + 1, acts_[i].data(), acts_[i].size());
        ++images_;
    }
    std::size_t images() const { return images_; }

    // Sets fp_in, every fp_out, fp_w and fp_b, enforces the limits and quantizes the weights.
    void finish() {
        if (images_ == 0) fail("quant::calibrate", "no calibration image was observed");
        m_.adjustments.clear();
        m_.fp_in = detail::fix_point_of(values_[0], max_[0], method_);
        int fp = m_.fp_in;
        for (std::size_t i = 0; i < m_.ops.size(); ++i) {
            auto* c = std::get_if<qconv>(&m_.ops[i]);
            if (!c) continue;  // a max pool keeps its input's fix point
            c->fp_out = detail::fix_point_of(values_[i + 1], max_[i + 1], method_);
            c->fp_w = detail::fix_point_of(c->weight, detail::max_abs_of(c->weight), method_);
            c->fp_b = max_abs_fix_point(detail::max_abs_of(c->bias));
            enforce_limits(m_, i, fp);
            quantize_tensors(*c);
            fp = c->fp_out;
        }
    }

    static void quantize_tensors(qconv& c) {
        c.qweight.resize(c.weight.size());
        c.qbias.resize(c.bias.size());
        for (std::size_t j = 0; j < c.weight.size(); ++j) c.qweight[j] = quantize(c.weight[j], c.fp_w);
        for (std::size_t j = 0; j < c.bias.size(); ++j) c.qbias[j] = quantize(c.bias[j], c.fp_b);
    }

private:
    void record(std::size_t slot, const float* v, std::size_t n) {
        auto& keep = values_[slot];
        for (std::size_t j = 0; j < n; ++j) {
            max_[slot] = std::max(max_[slot], static_cast<double>(std::abs(v[j])));
            if (method_ != calibration::mse) continue;
            // Deterministic thinning: keep every `stride`-th value once the sample is full.
            const std::size_t seen = seen_[slot]++;
            if (keep.size() < sample_)
                keep.push_back(v[j]);
            else if (seen % (seen / sample_ + 1) == 0)
                keep[seen % sample_] = v[j];
        }
    }
    qmodel& m_;
    calibration method_;
    std::size_t sample_, images_ = 0;
    std::vector<double> max_;
    std::vector<std::vector<float>> values_, acts_;
    std::vector<std::size_t> seen_;
};

}  // namespace sgp::quant
