#pragma once
// A network as the DPU runs it, as a small graph: batch norms folded into the convolution or
// linear layer before them, ReLU / ReLU6 fused into it (or into an add), dropout gone; one
// fix point per tensor. Tensor 0 is the network's input, tensor i + 1 the output of op i;
// every op names the tensors it reads (`inputs`, always earlier ones), and the last op's
// output is the network's. Built from a trained (and pruned) network at its active widths by
// `fold` (quant/fold.hpp); fix points are set by `calibrator` (quant/calibrate.hpp).
// Activations are per image [C][H][W] (NCHW).
//
// Code that handles ops does it with std::visit and one overload per op type, so that a new
// op type fails to compile wherever it is not handled yet.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "sgp/core/error.hpp"

namespace sgp::quant {

// The activation fused into a conv (or an add): applied before the output's saturation.
enum class activation { none, relu, relu6 };

inline std::string_view activation_name(activation a) {
    return a == activation::relu ? "relu" : a == activation::relu6 ? "relu6" : "none";
}

struct tensor_dims {
    std::size_t c = 0, h = 0, w = 0;
    std::size_t size() const { return c * h * w; }
    bool operator==(const tensor_dims&) const = default;
};
inline std::string to_string(const tensor_dims& d) {
    return std::to_string(d.c) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w);
}

// What every op has: where it comes from, what it reads, its output's fix point.
struct qop_base {
    std::size_t layer = 0;            // index of the network node it comes from
    std::vector<std::size_t> inputs;  // tensor ids, all < this op's own tensor
    int fp_out = 0;
};

// conv2d-fix (groups == 1) or depthwise-conv2d-fix (groups == cin == cout): a convolution with
// bias and an optional fused activation, int8 in and out. A linear layer is a 1x1
// convolution of a 1x1 map of its input features (see window_of).
struct qconv : qop_base {
    std::size_t cin = 0, cout = 0, k = 1, stride = 1, pad = 0, h = 1, w = 1, oh = 1, ow = 1;
    std::size_t groups = 1;
    activation act = activation::none;
    std::vector<float> weight;  // folded, [cout][cin / groups][k][k]
    std::vector<float> bias;    // folded, [cout]
    int fp_w = 0, fp_b = 0;
    std::vector<std::int8_t> qweight, qbias;  // at fp_w / fp_b (calibrator::quantize_tensors)

    bool depthwise() const { return groups > 1; }
    std::size_t taps() const { return cin / groups * k * k; }  // products per output
    tensor_dims out() const { return {cout, oh, ow}; }
};

// maxpool2d on int8: no padding; the output keeps the input's fix point.
struct qmax_pool : qop_base {
    std::size_t c = 0, h = 0, w = 0, k = 2, stride = 2, oh = 0, ow = 0;
    tensor_dims out() const { return {c, oh, ow}; }
};

// avgpool2d on int8, no padding (a global average pool is the k = h = w case): the DPU's
// sum times a constant and a shift (target/int8_reference.hpp); the output keeps the
// input's fix point.
struct qavg_pool : qop_base {
    std::size_t c = 0, h = 0, w = 0, k = 2, stride = 2, oh = 0, ow = 0;
    bool global() const { return k == h && k == w && oh == 1 && ow == 1; }
    tensor_dims out() const { return {c, oh, ow}; }
};

// eltwise add of two or more maps of one shape, with an optional fused ReLU.
struct qadd : qop_base {
    std::size_t c = 0, h = 0, w = 0;
    activation act = activation::none;  // none or relu
    tensor_dims out() const { return {c, h, w}; }
};

// concat along channels, inputs in order; all of them and the output at one fix point.
struct qconcat : qop_base {
    std::vector<std::size_t> channels;  // of each input
    std::size_t h = 0, w = 0;
    tensor_dims out() const {
        std::size_t c = 0;
        for (auto n : channels) c += n;
        return {c, h, w};
    }
};

using qop = std::variant<qconv, qmax_pool, qavg_pool, qadd, qconcat>;

// The overload set idiom: visit(overloaded{[](const qconv&) {...}, ...}, op).
template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

inline const qop_base& base_of(const qop& op) {
    return std::visit([](const auto& o) -> const qop_base& { return o; }, op);
}
inline qop_base& base_of(qop& op) {
    return std::visit([](auto& o) -> qop_base& { return o; }, op);
}
inline tensor_dims out_of(const qop& op) {
    return std::visit([](const auto& o) { return o.out(); }, op);
}
// The name reports and errors use (the XIR op the DPU's compiler makes of it).
inline std::string_view kind_of(const qop& op) {
    return std::visit(
        overloaded{[](const qconv& c) -> std::string_view { return c.depthwise() ? "depthwise-conv2d" : "conv2d"; },
                   [](const qmax_pool&) -> std::string_view { return "maxpool2d"; },
                   [](const qavg_pool&) -> std::string_view { return "avgpool2d"; },
                   [](const qadd&) -> std::string_view { return "add"; },
                   [](const qconcat&) -> std::string_view { return "concat"; }},
        op);
}

// The activation fused into an op (none for ops that cannot fuse one).
inline activation activation_of(const qop& op) {
    return std::visit(overloaded{[](const qconv& c) { return c.act; }, [](const qadd& a) { return a.act; },
                                 [](const auto&) { return activation::none; }},
                      op);
}

// A fix point the constraints of the DPU moved (calibrator / enforce_limits).
struct adjustment {
    std::size_t op = 0;
    std::string tensor;  // "weights", "bias", "output" (or "input": the network's input)
    int from = 0, to = 0;
    std::string reason;
};

struct qmodel {
    std::size_t c = 0, h = 0, w = 0;  // input map
    int fp_in = 0;
    std::vector<qop> ops;
    std::vector<adjustment> adjustments;

    // Appends op, reading `inputs` (default: the last tensor, as in a chain); returns its tensor.
    std::size_t add(qop op, std::vector<std::size_t> inputs = {}) {
        auto& b = base_of(op);
        b.inputs = inputs.empty() ? std::vector<std::size_t>{ops.size()} : std::move(inputs);
        ops.push_back(std::move(op));
        return ops.size();
    }

    std::size_t tensor_count() const { return ops.size() + 1; }
    std::size_t output_tensor() const { return ops.size(); }
    tensor_dims dims(std::size_t t) const { return t == 0 ? tensor_dims{c, h, w} : out_of(ops[t - 1]); }
    int fix_point(std::size_t t) const { return t == 0 ? fp_in : base_of(ops[t - 1]).fp_out; }
    // Fix point of op i's k-th input.
    int fp_input(std::size_t i, std::size_t k = 0) const { return fix_point(base_of(ops[i]).inputs[k]); }
    std::size_t outputs() const { return dims(output_tensor()).size(); }
    // For each tensor, the ops that read it.
    std::vector<std::vector<std::size_t>> consumers() const {
        std::vector<std::vector<std::size_t>> r(tensor_count());
        for (std::size_t i = 0; i < ops.size(); ++i)
            for (auto t : base_of(ops[i]).inputs) r[t].push_back(i);
        return r;
    }
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
    if (q.groups == 1 && q.k == 1 && q.h == 1 && q.w == 1 && h * w > 1 && c * h * w == q.cin)
        return {c, h, w, 1, 0, 1, 1, true};
    if (q.cin != c || q.h != h || q.w != w)
        fail(where, "op " + std::to_string(index) + " reads " + std::to_string(q.cin) + "x" + std::to_string(q.h) +
                        "x" + std::to_string(q.w) + ", its input is " + std::to_string(c) + "x" + std::to_string(h) +
                        "x" + std::to_string(w));
    return {q.cin, q.k, q.k, q.stride, q.pad, q.oh, q.ow, false};
}

// Structure checks every consumer of a qmodel runs first (an imported file, a model built by
// hand): inputs are earlier tensors, arities and shapes agree, windows fit, weights have their
// sizes. Fix points are checked by validate_fix_points (quant/calibrate.hpp).
inline void validate(const qmodel& m, const std::string& where) {
    if (m.ops.empty()) fail(where, "the model has no operations");
    if (m.c == 0 || m.h == 0 || m.w == 0) fail(where, "the input map is empty");
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        const auto& b = base_of(m.ops[i]);
        const std::string op = "op " + std::to_string(i) + " (" + std::string(kind_of(m.ops[i])) + ")";
        if (b.inputs.empty()) fail(where, op + " reads no tensor");
        for (auto t : b.inputs)
            if (t > i) fail(where, op + " reads tensor " + std::to_string(t) + ", which is not computed before it");
        const tensor_dims in = m.dims(b.inputs[0]);
        auto one_input = [&] {
            if (b.inputs.size() != 1) fail(where, op + " reads " + std::to_string(b.inputs.size()) + " tensors, not 1");
        };
        auto same_map = [&](std::size_t c, std::size_t h, std::size_t w) {
            if (in != tensor_dims{c, h, w})
                fail(where,
                     op + " is declared for a " + to_string({c, h, w}) + " input, its input is " + to_string(in));
        };
        auto pool_window = [&](std::size_t h, std::size_t w, std::size_t k, std::size_t s, std::size_t oh,
                               std::size_t ow) {
            if (k == 0 || s == 0 || k > h || k > w || oh != (h - k) / s + 1 || ow != (w - k) / s + 1)
                fail(where, op + ": a " + std::to_string(k) + "x" + std::to_string(k) + " / " + std::to_string(s) +
                                " window over " + std::to_string(h) + "x" + std::to_string(w) + " does not give " +
                                std::to_string(oh) + "x" + std::to_string(ow));
        };
        std::visit(
            overloaded{
                [&](const qconv& c) {
                    one_input();
                    window_of(c, in.c, in.h, in.w, where, i);
                    if (c.cout == 0 || c.k == 0 || c.stride == 0) fail(where, op + " has an empty shape");
                    if (c.groups != 1 && !(c.groups == c.cin && c.groups == c.cout))
                        fail(where, op + ": groups " + std::to_string(c.groups) +
                                        " (only 1, or depthwise with groups = input = output channels)");
                    if (c.h + 2 * c.pad < c.k || c.w + 2 * c.pad < c.k ||
                        c.oh != (c.h + 2 * c.pad - c.k) / c.stride + 1 ||
                        c.ow != (c.w + 2 * c.pad - c.k) / c.stride + 1)
                        fail(where, op + ": its output " + std::to_string(c.oh) + "x" + std::to_string(c.ow) +
                                        " is not what its window gives");
                    if (c.weight.size() != c.cout * c.taps() || c.bias.size() != c.cout)
                        fail(where, op + ": " + std::to_string(c.weight.size()) + " weights and " +
                                        std::to_string(c.bias.size()) + " biases for " + std::to_string(c.cout) +
                                        " outputs of " + std::to_string(c.taps()) + " taps");
                },
                [&](const qmax_pool& p) {
                    one_input();
                    same_map(p.c, p.h, p.w);
                    pool_window(p.h, p.w, p.k, p.stride, p.oh, p.ow);
                },
                [&](const qavg_pool& p) {
                    one_input();
                    same_map(p.c, p.h, p.w);
                    pool_window(p.h, p.w, p.k, p.stride, p.oh, p.ow);
                },
                [&](const qadd& a) {
                    if (b.inputs.size() < 2) fail(where, op + " adds fewer than two tensors");
                    for (auto t : b.inputs)
                        if (m.dims(t) != a.out())
                            fail(where, op + " adds a " + to_string(m.dims(t)) + " tensor into " + to_string(a.out()));
                    if (a.act == activation::relu6) fail(where, op + ": an add fuses ReLU only");
                },
                [&](const qconcat& k) {
                    if (k.channels.size() != b.inputs.size())
                        fail(where, op + " lists " + std::to_string(k.channels.size()) + " parts for " +
                                        std::to_string(b.inputs.size()) + " inputs");
                    for (std::size_t j = 0; j < b.inputs.size(); ++j)
                        if (m.dims(b.inputs[j]) != tensor_dims{k.channels[j], k.h, k.w})
                            fail(where, op + ": input " + std::to_string(j) + " is " + to_string(m.dims(b.inputs[j])) +
                                            ", declared " + to_string({k.channels[j], k.h, k.w}));
                }},
            m.ops[i]);
    }
}

}  // namespace sgp::quant

// fold(net), which builds a qmodel from a network, comes with it (after the types it needs).
#include "sgp/quant/fold.hpp"
