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

// Builds the qmodel as the layers fold themselves into it (each layer's fold_int8, in
// forward order): a conv2d or linear layer opens a conv op, a batch norm after it folds into
// its weights, a ReLU fuses into it, a max pool is its own op, flatten and dropout vanish.
class folder {
public:
    explicit folder(qmodel& m) : m_(m), c_(m.c), h_(m.h), w_(m.w) {}

    void conv(std::size_t i, std::size_t cin, std::size_t cout, std::size_t k, std::size_t stride, std::size_t pad,
              std::size_t oh, std::size_t ow, const float* weight, const float* bias) {
        qconv q;
        q.layer = i;
        q.cin = cin, q.cout = cout, q.k = k, q.stride = stride, q.pad = pad;
        q.h = h_, q.w = w_, q.oh = oh, q.ow = ow;
        open(std::move(q), weight, bias);
        h_ = oh, w_ = ow;
    }
    // A linear layer reads the flattened features as a 1x1 convolution of a 1x1 map.
    void linear(std::size_t i, std::size_t cin, std::size_t cout, const float* weight, const float* bias) {
        qconv q;
        q.layer = i;
        q.cin = cin, q.cout = cout;
        open(std::move(q), weight, bias);
        h_ = w_ = 1;
    }
    void batch_norm(std::size_t i, const float* gamma, const float* beta, const float* mean, const float* var,
                    float eps) {
        qconv& q = last_conv(i, "batch_norm");
        if (q.relu) fail("quant::fold", "layer " + std::to_string(i) + ": batch_norm after a ReLU cannot be folded");
        const std::size_t taps = q.cin * q.k * q.k;
        for (std::size_t o = 0; o < q.cout; ++o) {
            // y = gamma (x - mean) / sqrt(var + eps) + beta, with x = W v + b
            const double s = static_cast<double>(gamma[o]) / std::sqrt(static_cast<double>(var[o]) + eps);
            for (std::size_t t = 0; t < taps; ++t)
                q.weight[o * taps + t] = static_cast<float>(q.weight[o * taps + t] * s);
            q.bias[o] = static_cast<float>((q.bias[o] - mean[o]) * s + beta[o]);
        }
    }
    void relu(std::size_t i) { last_conv(i, "relu").relu = true; }
    void max_pool(std::size_t i, std::size_t k, std::size_t stride, std::size_t oh, std::size_t ow) {
        qmax_pool p;
        p.layer = i;
        p.c = c_, p.h = h_, p.w = w_, p.k = k, p.stride = stride, p.oh = oh, p.ow = ow;
        m_.ops.emplace_back(p);
        h_ = oh, w_ = ow;
        after_conv_ = false;
    }
    // [C][H][W] per image is already the flattened order: nothing to run.
    void flatten(std::size_t) {
        c_ = c_ * h_ * w_, h_ = 1, w_ = 1;
        after_conv_ = false;
    }
    void identity(std::size_t) {}
    void unsupported(std::size_t i, std::string_view kind) {
        fail("quant::fold", "layer " + std::to_string(i) + " (" + std::string(kind) +
                                ") has no int8 form yet (supported: conv2d, linear, batch_norm, relu, max_pool, "
                                "flatten, dropout)");
    }

private:
    void open(qconv q, const float* weight, const float* bias) {
        // A linear layer reads the flattened features: c already counts them.
        if (q.cin != c_)
            fail("quant::fold", "layer " + std::to_string(q.layer) + " reads " + std::to_string(q.cin) +
                                    " input channels, the layer before gives " + std::to_string(c_) +
                                    " (call update_widths after changing widths)");
        const std::size_t taps = q.cin * q.k * q.k;
        q.weight.assign(weight, weight + q.cout * taps);
        q.bias.assign(q.cout, 0.f);
        if (bias) std::copy(bias, bias + q.cout, q.bias.begin());
        c_ = q.cout;
        m_.ops.emplace_back(std::move(q));
        after_conv_ = true;
    }
    // The qconv that a batch_norm or relu at layer i folds into: the one right before it.
    qconv& last_conv(std::size_t i, std::string_view what) {
        if (!after_conv_)
            fail("quant::fold", "layer " + std::to_string(i) + " (" + std::string(what) +
                                    ") follows no convolution or linear layer: the DPU cannot run it on its own");
        return std::get<qconv>(m_.ops.back());
    }
    qmodel& m_;
    std::size_t c_, h_, w_;
    bool after_conv_ = false;
};

// The network in evaluation form, at its active widths. Supported: conv2d and linear (with a
// following batch_norm and/or relu), max_pool, flatten, dropout. A layer without an int8 form
// yet (an average pool, a residual add) is refused by name.
template <class Net>
qmodel fold(Net& net) {
    // A NaN or Inf would quantize to garbage fix points without any error downstream.
    require_finite(net, "quant::fold", "a network with non-finite weights cannot be quantized");
    qmodel m;
    m.c = Net::input_shape.c, m.h = Net::input_shape.h, m.w = Net::input_shape.w;
    folder f(m);
    net.body().fold_int8(f, 0);
    if (m.ops.empty()) fail("quant::fold", "the network has no layer the DPU runs");
    return m;
}

}  // namespace sgp::quant
