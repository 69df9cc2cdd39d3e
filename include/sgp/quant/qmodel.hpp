#pragma once
// A network as the DPU runs it: batch norms folded into the convolution or linear layer before
// them, ReLUs fused into it, dropout gone; per tensor a fix point. Built from a trained (and
// pruned) sequential network at its active widths by `fold`; fix points are set by
// `calibrate` (quant/calibrate.hpp). Activations are per image [C][H][W] (NCHW).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/finite.hpp"

namespace sgp::quant {

// conv2d-fix: a convolution (a linear layer is a 1x1 convolution of a 1x1 map of its input
// features) with bias, optional ReLU, int8 in and out.
struct qconv {
    std::size_t layer = 0;  // index of the network layer it comes from
    std::size_t cin = 0, cout = 0, k = 1, stride = 1, pad = 0, h = 1, w = 1, oh = 1, ow = 1;
    bool relu = false;
    std::vector<float> weight;  // folded, [cout][cin][k][k]
    std::vector<float> bias;    // folded, [cout]
    int fp_w = 0, fp_b = 0, fp_out = 0;
    std::vector<std::int8_t> qweight, qbias;  // at fp_w / fp_b (quantize_weights)
};

// maxpool2d on int8: the fix point passes through unchanged.
struct qmax_pool {
    std::size_t layer = 0;
    std::size_t c = 0, h = 0, w = 0, k = 2, stride = 2, oh = 0, ow = 0;
};

using qop = std::variant<qconv, qmax_pool>;

// A fix point the constraints of the DPU moved (see quantize_weights / enforce_limits).
struct adjustment {
    std::size_t op = 0;
    std::string tensor;  // "weights", "bias" or "output"
    int from = 0, to = 0;
    std::string reason;
};

struct qmodel {
    std::size_t c = 0, h = 0, w = 0;  // input map
    int fp_in = 0;
    std::vector<qop> ops;
    std::vector<adjustment> adjustments;

    std::size_t outputs() const {
        const auto& last = ops.back();
        if (const auto* c = std::get_if<qconv>(&last)) return c->cout * c->oh * c->ow;
        const auto& p = std::get<qmax_pool>(last);
        return p.c * p.oh * p.ow;
    }
    // Fix point of the activation that op i writes.
    int fp_after(std::size_t i) const {
        for (std::size_t j = i + 1; j-- > 0;)
            if (const auto* c = std::get_if<qconv>(&ops[j])) return c->fp_out;
        return fp_in;
    }
    int fp_before(std::size_t i) const { return i == 0 ? fp_in : fp_after(i - 1); }
};

// Refuses a conv whose int8 tensors calibration has not set yet.
inline void require_calibrated(const qconv& c, const std::string& where) {
    if (c.qweight.size() != c.weight.size() || c.qbias.size() != c.cout)
        fail(where, "the model is not calibrated (no int8 weights): run quant::calibrator first");
}

// The window a conv op slides over the map (c, h, w) it reads. A linear layer after a
// flatten reads that map as c*h*w features (a 1x1 conv of a 1x1 map in the qmodel): its
// window is the whole map, unpadded, which gives the same sums over [c][h][w] to the int8
// path and to the exported graph. Fails, naming op `index`, when the op does not read that map.
struct conv_window {
    std::size_t cin = 1, kh = 1, kw = 1, stride = 1, pad = 0, oh = 1, ow = 1;
    bool flattened = false;
};
inline conv_window window_of(const qconv& q, std::size_t c, std::size_t h, std::size_t w, const std::string& where,
                             std::size_t index) {
    if (q.k == 1 && q.h == 1 && q.w == 1 && h * w > 1 && c * h * w == q.cin) return {c, h, w, 1, 0, 1, 1, true};
    if (q.cin != c || q.h != h || q.w != w)
        fail(where, "op " + std::to_string(index) + " reads " + std::to_string(q.cin) + "x" + std::to_string(q.h) +
                        "x" + std::to_string(q.w) + ", the op before gives " + std::to_string(c) + "x" +
                        std::to_string(h) + "x" + std::to_string(w));
    return {q.cin, q.k, q.k, q.stride, q.pad, q.oh, q.ow, false};
}

// The network in evaluation form, at its active widths. Supported: conv2d and linear (with a
// following batch_norm and/or relu), max_pool, flatten, dropout. Anything else (an average
// pool, a batch norm or ReLU with no convolution before it) is refused by name.
template <class Net>
qmodel fold(Net& net) {
    // A NaN or Inf would quantize to garbage fix points without any error downstream.
    require_finite(net, "quant::fold", "a network with non-finite weights cannot be quantized");
    qmodel m;
    m.c = Net::input_shape.c, m.h = Net::input_shape.h, m.w = Net::input_shape.w;
    std::size_t c = m.c, h = m.h, w = m.w;  // the current activation
    // The qconv that a batch_norm or relu at layer i folds into: the one right before it.
    bool after_conv = false;
    auto last_conv = [&](std::size_t i, std::string_view what) -> qconv& {
        if (!after_conv)
            fail("quant::fold", "layer " + std::to_string(i) + " (" + std::string(what) +
                                    ") follows no convolution or linear layer: the DPU cannot run it on its own");
        return std::get<qconv>(m.ops.back());
    };
    net.for_each_layer([&](std::size_t i, auto& l) {
        using L = std::remove_cvref_t<decltype(l)>;
        if constexpr (L::kind == "conv2d" || L::kind == "linear") {
            qconv q;
            q.layer = i;
            q.cin = l.input_channels(), q.cout = l.out_channels();
            if constexpr (L::kind == "conv2d") {
                q.k = L::kernel, q.stride = L::stride, q.pad = L::padding;
                q.h = h, q.w = w, q.oh = L::out_shape.h, q.ow = L::out_shape.w;
            }
            // A linear layer reads the flattened features: c already counts them.
            if (q.cin != c)
                fail("quant::fold", "layer " + std::to_string(i) + " reads " + std::to_string(q.cin) +
                                        " input channels, the layer before gives " + std::to_string(c) +
                                        " (call update_widths after changing widths)");
            const std::size_t taps = q.cin * q.k * q.k;
            const float* wt = l.weight();
            q.weight.assign(wt, wt + q.cout * taps);
            q.bias.assign(q.cout, 0.f);
            if constexpr (L::has_bias) std::copy(l.bias(), l.bias() + q.cout, q.bias.begin());
            m.ops.emplace_back(std::move(q));
            c = l.out_channels(), h = L::out_shape.flat ? 1 : L::out_shape.h,
            w = L::out_shape.flat ? 1 : L::out_shape.w;
            after_conv = true;
        } else if constexpr (L::kind == "batch_norm") {
            qconv& q = last_conv(i, "batch_norm");
            if (q.relu)
                fail("quant::fold", "layer " + std::to_string(i) + ": batch_norm after a ReLU cannot be folded");
            const std::size_t taps = q.cin * q.k * q.k;
            for (std::size_t o = 0; o < q.cout; ++o) {
                // y = gamma (x - mean) / sqrt(var + eps) + beta, with x = W v + b
                const double s =
                    static_cast<double>(l.gamma()[o]) / std::sqrt(static_cast<double>(l.running_var()[o]) + L::eps);
                for (std::size_t t = 0; t < taps; ++t)
                    q.weight[o * taps + t] = static_cast<float>(q.weight[o * taps + t] * s);
                q.bias[o] = static_cast<float>((q.bias[o] - l.running_mean()[o]) * s + l.beta()[o]);
            }
        } else if constexpr (L::kind == "relu") {
            last_conv(i, "relu").relu = true;
        } else if constexpr (L::kind == "max_pool") {
            qmax_pool p;
            p.layer = i;
            p.c = c, p.h = h, p.w = w, p.k = L::kernel, p.stride = L::stride;
            p.oh = L::out_shape.h, p.ow = L::out_shape.w;
            m.ops.emplace_back(p);
            h = p.oh, w = p.ow;
            after_conv = false;
        } else if constexpr (L::kind == "flatten") {
            // [C][H][W] per image is already the flattened order: nothing to run.
            c = c * h * w, h = 1, w = 1;
            after_conv = false;
        } else if constexpr (L::kind == "dropout") {
            // the identity in evaluation
        } else {
            fail("quant::fold", "layer " + std::to_string(i) + " (" + std::string(L::kind) +
                                    ") has no int8 form yet (supported: conv2d, linear, batch_norm, relu, max_pool, "
                                    "flatten, dropout)");
        }
    });
    if (m.ops.empty()) fail("quant::fold", "the network has no layer the DPU runs");
    return m;
}

}  // namespace sgp::quant
