#pragma once
// Fix points for a folded network (quant/qmodel.hpp): activations from calibration images run
// through the float network, weights and biases from their own values; then the DPU's rules
// (a conv's shift limits, the eltwise, concat and pooling rules) enforced by moving fix
// points, each move recorded in qmodel::adjustments.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/fold.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::quant {

enum class calibration {
    max_abs,  // the finest fix point that represents the largest value seen
    mse       // the fix point with the least squared error over the values seen
};

namespace detail {

// One conv op in float (double sums), [cin][h][w] -> [cout][oh][ow]; groups split the channels.
inline void float_conv(const qconv& c, const float* in, float* out) {
    const std::size_t taps = c.taps(), gin = c.cin / c.groups, gout = c.cout / c.groups;
    for (std::size_t o = 0; o < c.cout; ++o) {
        const std::size_t c0 = o / gout * gin;
        for (std::size_t oy = 0; oy < c.oh; ++oy)
            for (std::size_t ox = 0; ox < c.ow; ++ox) {
                double s = c.bias[o];
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
                            s += static_cast<double>(c.weight[o * taps + (ci * c.k + ky) * c.k + kx]) *
                                 in[((c0 + ci) * c.h + static_cast<std::size_t>(iy)) * c.w +
                                    static_cast<std::size_t>(ix)];
                        }
                if (c.act != activation::none) s = std::max(s, 0.0);
                if (c.act == activation::relu6) s = std::min(s, 6.0);
                out[(o * c.oh + oy) * c.ow + ox] = static_cast<float>(s);
            }
    }
}

// A k x k window (no padding) over each channel, reduced by `f` from the first value.
template <class Pool, class F>
void float_pool(const Pool& p, const float* in, float* out, F&& f) {
    for (std::size_t ch = 0; ch < p.c; ++ch)
        for (std::size_t oy = 0; oy < p.oh; ++oy)
            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                const float* win = in + (ch * p.h + oy * p.stride) * p.w + ox * p.stride;
                out[(ch * p.oh + oy) * p.ow + ox] = f(win, p.w);
            }
}

}  // namespace detail

// The folded network in float on one image x ([C][H][W]); acts[i] is op i's output. An average
// pool here is the true mean (the DPU's approximation of it is the int8 path's business).
inline void float_forward(const qmodel& m, const float* x, std::vector<std::vector<float>>& acts) {
    acts.resize(m.ops.size());
    auto tensor = [&](std::size_t t) { return t == 0 ? x : acts[t - 1].data(); };
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        auto& out = acts[i];
        out.assign(out_of(m.ops[i]).size(), 0.f);
        const auto& inputs = base_of(m.ops[i]).inputs;
        const float* in = tensor(inputs[0]);
        std::visit(overloaded{[&](const qconv& c) { detail::float_conv(c, in, out.data()); },
                              [&](const qmax_pool& p) {
                                  detail::float_pool(p, in, out.data(), [&](const float* win, std::size_t row) {
                                      float v = win[0];
                                      for (std::size_t ky = 0; ky < p.k; ++ky)
                                          for (std::size_t kx = 0; kx < p.k; ++kx) v = std::max(v, win[ky * row + kx]);
                                      return v;
                                  });
                              },
                              [&](const qavg_pool& p) {
                                  detail::float_pool(p, in, out.data(), [&](const float* win, std::size_t row) {
                                      double s = 0;
                                      for (std::size_t ky = 0; ky < p.k; ++ky)
                                          for (std::size_t kx = 0; kx < p.k; ++kx) s += win[ky * row + kx];
                                      return static_cast<float>(s / static_cast<double>(p.k * p.k));
                                  });
                              },
                              [&](const qadd& a) {
                                  for (std::size_t j = 0; j < out.size(); ++j) {
                                      double s = 0;
                                      for (auto t : inputs) s += tensor(t)[j];
                                      if (a.act == activation::relu) s = std::max(s, 0.0);
                                      out[j] = static_cast<float>(s);
                                  }
                              },
                              [&](const qconcat& k) {
                                  float* o = out.data();
                                  for (std::size_t j = 0; j < inputs.size(); ++j) {
                                      const std::size_t n = k.channels[j] * k.h * k.w;
                                      std::copy(tensor(inputs[j]), tensor(inputs[j]) + n, o);
                                      o += n;
                                  }
                              }},
                   m.ops[i]);
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
// The broken shift limit of op `index` in words, or "" when its shifts are within them.
inline std::string shift_limit_violation(const qconv& c, int fp_in, std::size_t index) {
    // In 64 bits: fix points from anywhere must not overflow on the way to the check.
    const std::int64_t cut = std::int64_t{fp_in} + c.fp_w - c.fp_out, bias = std::int64_t{fp_in} + c.fp_w - c.fp_b;
    if (cut >= 0 && cut <= 16 && bias <= 16 && bias >= std::min<std::int64_t>(0, cut - 16)) return "";
    return "op " + std::to_string(index) + ": shift_cut " + std::to_string(cut) + " and shift_bias " +
           std::to_string(bias) +
           " are outside the DPU's limits (0..16, min(0, shift_cut - 16)..16; run quant::enforce_limits)";
}
inline shifts checked_shifts(const qconv& c, int fp_in, const std::string& where, std::size_t index) {
    if (auto why = shift_limit_violation(c, fp_in, index); !why.empty()) fail(where, why);
    // Within the limits, so the 64-bit differences fit an int (the fix points alone may not).
    return {static_cast<int>(std::int64_t{fp_in} + c.fp_w - c.fp_out),
            static_cast<int>(std::int64_t{fp_in} + c.fp_w - c.fp_b)};
}

// The fix-point rules of every op, as Vitis AI's quantizer and compiler enforce them (and
// AMD's Olive vitis_ai pass states): a conv's shift limits (checked_shifts); an eltwise add
// needs max(input fix) - min(input fix) <= 15 and |min(input fix) - output fix| <= 15; a
// concat has its inputs and its output at one fix point; a pool keeps its input's fix point.
// Returns the broken rule of op `index` in words, or "" when it holds.
inline std::string fix_rule_violation(const qmodel& m, std::size_t index) {
    const auto& b = base_of(m.ops[index]);
    const std::string op = "op " + std::to_string(index) + " (" + std::string(kind_of(m.ops[index])) + ")";
    auto in_range = [](int v) { return v >= -64 && v <= 64; };
    for (auto t : b.inputs)
        if (!in_range(m.fix_point(t)) || !in_range(b.fp_out)) return op + ": fix point outside -64..64";
    auto pool = [&]() -> std::string {
        if (m.fix_point(b.inputs[0]) == b.fp_out) return "";
        return op + ": input at fix point " + std::to_string(m.fix_point(b.inputs[0])) + ", output at " +
               std::to_string(b.fp_out) + " (a pool keeps its input's fix point)";
    };
    return std::visit(
        overloaded{[&](const qconv& c) { return shift_limit_violation(c, m.fix_point(b.inputs[0]), index); },
                   [&](const qadd&) -> std::string {
                       int lo = 64, hi = -64;
                       for (auto t : b.inputs) lo = std::min(lo, m.fix_point(t)), hi = std::max(hi, m.fix_point(t));
                       if (hi - lo <= 15 && lo - b.fp_out <= 15 && lo - b.fp_out >= -15) return "";
                       return op + ": input fix points " + std::to_string(lo) + ".." + std::to_string(hi) +
                              " and output " + std::to_string(b.fp_out) +
                              " break the eltwise rule (max - min <= 15, |min - out| <= 15)";
                   },
                   [&](const qconcat&) -> std::string {
                       for (auto t : b.inputs)
                           if (m.fix_point(t) != b.fp_out)
                               return op + ": input at fix point " + std::to_string(m.fix_point(t)) + ", output at " +
                                      std::to_string(b.fp_out) + " (a concat keeps one fix point)";
                       return "";
                   },
                   [&](const qmax_pool&) { return pool(); }, [&](const qavg_pool&) { return pool(); }},
        m.ops[index]);
}

// The same, failing with the reason (`where` names the caller).
inline void check_fix_rules(const qmodel& m, std::size_t index, const std::string& where) {
    if (auto why = fix_rule_violation(m, index); !why.empty()) fail(where, why);
}

// Structure (validate) and every fix-point rule; what the int8 paths and the exporter require.
inline void validate_calibrated(const qmodel& m, const std::string& where) {
    validate(m, where);
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        if (const auto* c = std::get_if<qconv>(&m.ops[i])) require_calibrated(*c, where);
        check_fix_rules(m, i, where);
    }
}

// Lowers fix points (coarser steps: never a clipped value that fitted before) until every
// op's rule holds, recording each move. Lowering only, so it ends: a rule sets a fix point to
// at most another's plus a constant, and no chain of rules lowers a tensor below itself.
inline void enforce_fix_rules(qmodel& m) {
    auto lower = [&](std::size_t t, int to, std::size_t by, const std::string& why) {
        const int from = m.fix_point(t);
        if (to >= from) return false;
        const std::string rule = std::string(kind_of(m.ops[by])) + " op " + std::to_string(by) + ": " + why;
        if (t == 0) {
            m.adjustments.push_back({by, "input", from, to, rule});
            m.fp_in = to;
        } else {
            m.adjustments.push_back({t - 1, "output", from, to, rule});
            base_of(m.ops[t - 1]).fp_out = to;
        }
        return true;
    };
    const std::size_t limit = 64 * (m.ops.size() + 1);
    for (std::size_t round = 0;; ++round) {
        if (round == limit) fail("quant::calibrate", "the fix-point rules did not settle");
        bool moved = false;
        for (std::size_t i = 0; i < m.ops.size(); ++i) {
            auto& b = base_of(m.ops[i]);
            const std::size_t self = i + 1;
            auto pool = [&] {
                const int lo = std::min(m.fix_point(b.inputs[0]), b.fp_out);
                moved |= lower(b.inputs[0], lo, i, "a pool keeps its input's fix point");
                moved |= lower(self, lo, i, "a pool keeps its input's fix point");
            };
            std::visit(overloaded{[&](qconv& c) {
                                      const int fp_in = m.fix_point(b.inputs[0]);
                                      if (fp_in + c.fp_w - c.fp_out < 0)
                                          moved |= lower(self, fp_in + c.fp_w, i, "shift_cut < 0");
                                      const int cut = fp_in + c.fp_w - c.fp_out;
                                      if (cut > 16) {
                                          m.adjustments.push_back({i, "weights", c.fp_w, c.fp_w - (cut - 16),
                                                                   "shift_cut " + std::to_string(cut) + " > 16"});
                                          c.fp_w -= cut - 16;
                                      }
                                  },
                                  [&](qadd&) {
                                      int lo = m.fix_point(b.inputs[0]);
                                      for (auto t : b.inputs) lo = std::min(lo, m.fix_point(t));
                                      for (auto t : b.inputs)
                                          moved |= lower(t, lo + 15, i, "input fix points more than 15 apart");
                                      moved |= lower(self, lo + 15, i, "output more than 15 finer than the inputs");
                                      for (auto t : b.inputs)
                                          moved |=
                                              lower(t, b.fp_out + 15, i, "output more than 15 coarser than an input");
                                  },
                                  [&](qconcat&) {
                                      int lo = b.fp_out;
                                      for (auto t : b.inputs) lo = std::min(lo, m.fix_point(t));
                                      for (auto t : b.inputs) moved |= lower(t, lo, i, "one fix point for a concat");
                                      moved |= lower(self, lo, i, "one fix point for a concat");
                                  },
                                  [&](qmax_pool&) { pool(); }, [&](qavg_pool&) { pool(); }},
                       m.ops[i]);
        }
        if (!moved) break;
    }
    // Biases move alone (nothing reads their fix point but their conv).
    for (std::size_t i = 0; i < m.ops.size(); ++i)
        if (std::holds_alternative<qconv>(m.ops[i])) enforce_limits(m, i, m.fp_input(i));
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
          seen_(m.ops.size() + 1, 0) {
        validate(m, "quant::calibrate");
    }

    // One image, [C][H][W].
    void observe(const float* x) {
        float_forward(m_, x, acts_);
        record(0, x, m_.c * m_.h * m_.w);
        for (std::size_t i = 0; i < acts_.size(); ++i) record(i + 1, acts_[i].data(), acts_[i].size());
        ++images_;
    }
    std::size_t images() const { return images_; }

    // Sets fp_in, every fp_out, fp_w and fp_b, enforces the DPU's rules and quantizes the weights.
    void finish() {
        if (images_ == 0) fail("quant::calibrate", "no calibration image was observed");
        m_.adjustments.clear();
        m_.fp_in = detail::fix_point_of(values_[0], max_[0], method_);
        for (std::size_t i = 0; i < m_.ops.size(); ++i) {
            base_of(m_.ops[i]).fp_out = detail::fix_point_of(values_[i + 1], max_[i + 1], method_);
            if (auto* c = std::get_if<qconv>(&m_.ops[i])) {
                c->fp_w = detail::fix_point_of(c->weight, detail::max_abs_of(c->weight), method_);
                c->fp_b = max_abs_fix_point(detail::max_abs_of(c->bias));
            }
        }
        // A pool's output has at most its input's range: it starts at its input's fix point, so
        // that only a real conflict (a concat, an add) is recorded as a move.
        for (std::size_t i = 0; i < m_.ops.size(); ++i)
            if (std::holds_alternative<qmax_pool>(m_.ops[i]) || std::holds_alternative<qavg_pool>(m_.ops[i]))
                base_of(m_.ops[i]).fp_out = m_.fp_input(i);
        enforce_fix_rules(m_);
        for (auto& op : m_.ops)
            if (auto* c = std::get_if<qconv>(&op)) quantize_tensors(*c);
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
