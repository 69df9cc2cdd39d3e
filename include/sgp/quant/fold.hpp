#pragma once
// fold(net): the qmodel graph (quant/qmodel.hpp) of a trained network at its active widths.
// Each layer folds itself into it through a `folder` (its fold_int8, in forward order):
//   conv2d, depthwise_conv2d, linear   open a conv op
//   batch_norm                         folds into the weights of the conv right before it
//   relu, relu6                        fuse into the conv (relu also into an add) before them
//   max_pool, avg_pool, global_avg_pool  their own ops
//   residual                           body and shortcut read the block's input; an add joins them
//   concat                             every branch reads the input; a concat joins them
//   subsample_pad                      a fixed 1x1 strided conv (weights 1 and 0, exact in int8)
//   flatten, dropout                   vanish
// A batch norm or activation can fold only into an op whose output nothing else reads yet: a
// branch point (a block's input) is refused with the reason.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/finite.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::quant {

class folder {
public:
    // Where the next layer reads: a tensor and the map it sees (a flatten changes only the view).
    struct point {
        std::size_t tensor = 0;
        tensor_dims view;
    };

    explicit folder(qmodel& m) : m_(m), at_{0, {m.c, m.h, m.w}} {}

    // The current point, for a composite layer that reads it again later (a branch point):
    // nothing may fold into its producer any more.
    point here() {
        fusable_ = false;
        return at_;
    }
    void restore(const point& p) {
        at_ = p;
        fusable_ = false;
    }

    void conv(std::size_t i, std::size_t cin, std::size_t cout, std::size_t k, std::size_t stride, std::size_t pad,
              std::size_t oh, std::size_t ow, const float* weight, const float* bias) {
        qconv q;
        q.layer = i;
        q.cin = cin, q.cout = cout, q.k = k, q.stride = stride, q.pad = pad;
        q.h = at_.view.h, q.w = at_.view.w, q.oh = oh, q.ow = ow;
        open(std::move(q), weight, bias);
    }
    // Each channel convolved with its own k x k kernel (weights [c][1][k][k]).
    void depthwise_conv(std::size_t i, std::size_t c, std::size_t k, std::size_t stride, std::size_t pad,
                        std::size_t oh, std::size_t ow, const float* weight, const float* bias) {
        qconv q;
        q.layer = i;
        q.cin = c, q.cout = c, q.groups = c, q.k = k, q.stride = stride, q.pad = pad;
        q.h = at_.view.h, q.w = at_.view.w, q.oh = oh, q.ow = ow;
        open(std::move(q), weight, bias);
    }
    // A linear layer reads the flattened features as a 1x1 convolution of a 1x1 map.
    void linear(std::size_t i, std::size_t cin, std::size_t cout, const float* weight, const float* bias) {
        qconv q;
        q.layer = i;
        q.cin = cin, q.cout = cout;
        open(std::move(q), weight, bias);
    }
    void batch_norm(std::size_t i, const float* gamma, const float* beta, const float* mean, const float* var,
                    float eps) {
        qconv& q = fusion_target<qconv>(i, "batch_norm");
        if (q.act != activation::none)
            fail("quant::fold", "layer " + std::to_string(i) + ": batch_norm after an activation cannot be folded");
        const std::size_t taps = q.taps();
        for (std::size_t o = 0; o < q.cout; ++o) {
            // y = gamma (x - mean) / sqrt(var + eps) + beta, with x = W v + b
            const double s = static_cast<double>(gamma[o]) / std::sqrt(static_cast<double>(var[o]) + eps);
            for (std::size_t t = 0; t < taps; ++t)
                q.weight[o * taps + t] = static_cast<float>(q.weight[o * taps + t] * s);
            q.bias[o] = static_cast<float>((q.bias[o] - mean[o]) * s + beta[o]);
        }
    }
    void relu(std::size_t i) {
        if (fusable_ && std::holds_alternative<qadd>(m_.ops.back())) {
            auto& a = std::get<qadd>(m_.ops.back());
            if (a.act == activation::none) {
                a.act = activation::relu;
                return;
            }
        }
        set_activation(fusion_target<qconv>(i, "relu"), activation::relu, i);
    }
    void relu6(std::size_t i) { set_activation(fusion_target<qconv>(i, "relu6"), activation::relu6, i); }
    void max_pool(std::size_t i, std::size_t k, std::size_t stride, std::size_t oh, std::size_t ow) {
        qmax_pool p;
        p.layer = i;
        p.c = map_view(i).c, p.h = at_.view.h, p.w = at_.view.w, p.k = k, p.stride = stride, p.oh = oh, p.ow = ow;
        append(std::move(p), {at_.tensor}, {p.c, oh, ow});
    }
    void avg_pool(std::size_t i, std::size_t k, std::size_t stride, std::size_t oh, std::size_t ow) {
        qavg_pool p;
        p.layer = i;
        p.c = map_view(i).c, p.h = at_.view.h, p.w = at_.view.w, p.k = k, p.stride = stride, p.oh = oh, p.ow = ow;
        append(std::move(p), {at_.tensor}, {p.c, oh, ow});
    }
    // x[:, :, ::s, ::s] with `before` zero channels in front and `after` behind: a 1x1 conv of
    // stride s whose weights are 1 (channel to itself) and 0, exact at weight fix point 6.
    void subsample_pad(std::size_t i, std::size_t before, std::size_t after, std::size_t stride, std::size_t oh,
                       std::size_t ow) {
        const std::size_t cin = map_view(i).c, cout = before + cin + after;
        std::vector<float> weight(cout * cin, 0.f);
        for (std::size_t ch = 0; ch < cin; ++ch) weight[(before + ch) * cin + ch] = 1.f;
        conv(i, cin, cout, 1, stride, 0, oh, ow, weight.data(), nullptr);
        fusable_ = false;  // no batch norm of the network follows it: it is not the network's conv
    }
    // The eltwise add of the points `parts` (a residual block's body and shortcut).
    void add(std::size_t i, const std::vector<point>& parts, bool relu) {
        qadd a;
        a.layer = i;
        std::vector<std::size_t> in;
        for (const auto& p : parts) {
            in.push_back(p.tensor);
            if (p.view != m_.dims(p.tensor))
                fail("quant::fold", "layer " + std::to_string(i) + ": an add of flattened features");
        }
        const tensor_dims d = parts.front().view;
        a.c = d.c, a.h = d.h, a.w = d.w;
        a.act = relu ? activation::relu : activation::none;
        append(std::move(a), std::move(in), d);
        fusable_ = true;  // a ReLU after it may fuse (when the block did not)
    }
    // The concat of the points `parts`, in order, along channels.
    void concat(std::size_t i, const std::vector<point>& parts) {
        qconcat k;
        k.layer = i;
        std::vector<std::size_t> in;
        for (const auto& p : parts) {
            if (p.view != m_.dims(p.tensor))
                fail("quant::fold", "layer " + std::to_string(i) + ": a concat of flattened features");
            in.push_back(p.tensor);
            k.channels.push_back(p.view.c);
        }
        k.h = parts.front().view.h, k.w = parts.front().view.w;
        const tensor_dims d = k.out();
        append(std::move(k), std::move(in), d);
    }
    // [C][H][W] per image is already the flattened order: only the view changes.
    void flatten(std::size_t) {
        at_.view = {at_.view.size(), 1, 1};
        fusable_ = false;
    }
    void identity(std::size_t) {}
    [[noreturn]] void unsupported(std::size_t i, std::string_view kind) {
        fail("quant::fold", "layer " + std::to_string(i) + " (" + std::string(kind) + ") has no int8 form");
    }

private:
    void open(qconv q, const float* weight, const float* bias) {
        // A linear layer reads the flattened features: the view's c already counts them.
        if (q.cin != at_.view.c)
            fail("quant::fold", "layer " + std::to_string(q.layer) + " reads " + std::to_string(q.cin) +
                                    " input channels, the layer before gives " + std::to_string(at_.view.c) +
                                    " (call update_widths after changing widths)");
        const std::size_t n = q.cout * q.taps();
        q.weight.assign(weight, weight + n);
        q.bias.assign(q.cout, 0.f);
        if (bias) std::copy(bias, bias + q.cout, q.bias.begin());
        const tensor_dims d = q.out();
        append(std::move(q), {at_.tensor}, d);
    }
    template <class Op>
    void append(Op op, std::vector<std::size_t> inputs, tensor_dims d) {
        at_.tensor = m_.add(std::move(op), std::move(inputs));
        at_.view = d;
        fusable_ = std::is_same_v<Op, qconv>;
    }
    // The map a pool or subsample reads: a flattened view has none.
    const tensor_dims& map_view(std::size_t i) const {
        if (at_.view != m_.dims(at_.tensor))
            fail("quant::fold", "layer " + std::to_string(i) + " pools flattened features");
        return at_.view;
    }
    // The op right before layer i, which a batch norm or an activation folds into.
    template <class Op>
    Op& fusion_target(std::size_t i, std::string_view what) {
        if (!fusable_ || !std::holds_alternative<Op>(m_.ops.back()))
            fail("quant::fold", "layer " + std::to_string(i) + " (" + std::string(what) +
                                    ") follows no convolution or linear layer whose output it alone reads: the DPU "
                                    "cannot run it on its own");
        return std::get<Op>(m_.ops.back());
    }
    static void set_activation(qconv& q, activation a, std::size_t i) {
        if (q.act != activation::none)
            fail("quant::fold", "layer " + std::to_string(i) + ": a second activation after one conv");
        q.act = a;
    }
    qmodel& m_;
    point at_;
    bool fusable_ = false;
};

// The network in evaluation form, at its active widths (the layers above; any other layer is
// refused by name).
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
