#pragma once
// Quantization-aware fine-tuning of a calibrated qmodel: the weights and biases move, the fix
// points stay (so every rule of the DPU that held still holds).
//
// Per-tensor power-of-two scales cost thin and depthwise networks more than calibration can
// win back (a MobileNetV2 pruned by SGP loses about half a point). Fine-tuning with the
// quantization in the loop recovers it, as Vitis AI's quantizer does with its own QAT. Here
// the forward pass is the DPU's own arithmetic, computed by the fast int8 path
// (target/int8_target.hpp, bit-exact to the reference): no simulated rounding that could drift
// from the hardware. The backward pass is in float on the real values of those int8 tensors,
// with straight-through gradients: each rounding is the identity, and a gradient stops where
// the forward clipped (ReLU at 0, ReLU6 at its cap, saturation at -128 / 127). The average
// pool's derivative is the DPU's factor N / 2^M (quant/dpu_arithmetic.hpp), not 1 / k^2.
//
// The objective is the search's (quant/fix_point_search.hpp): the mean KL divergence from the
// float network's softmax output to the int8 one, on training images, no labels. The float
// weights of each conv are master weights, kept inside the range their fix point represents;
// after every step they are requantized at their unchanged fix points. Adam, with each
// tensor's step measured in its own quantization steps (lr 0.004: 1/250 of 2^-fp_w, decaying
// to 0 along a cosine), because folded weights differ in scale by orders of magnitude across
// layers; larger steps flip many roundings at once and the loss rises (0.01 did on a pruned
// MobileNetV2; 0.004 did better than 0.002 on its validation split). After each epoch the loss over all the images is
// measured, and the weights of the best epoch are kept: fine-tuning never leaves the model further from float than it
// found it, on those images.
//
// Deterministic: the images of a batch are split over a fixed number of shards whose
// gradients are summed in shard order, so the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/kernels/gemm.hpp"
#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/dpu_arithmetic.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/fix_point_search.hpp"
#include "sgp/quant/qmodel.hpp"
#include "sgp/target/int8_target.hpp"

namespace sgp::quant {

struct qat_options {
    std::size_t epochs = 3;
    std::size_t batch = 32;
    double lr = 0.004;  // Adam's first step, in quantization steps of each tensor (2^-fp), cosine decay to 0
    double beta1 = 0.9, beta2 = 0.999;
    std::uint64_t seed = 1;  // the order of the images in each epoch
    std::size_t shards = 2;  // fixed split of a batch: up to this many threads share the work, and
                             // the result does not depend on how many do
    thread_pool* pool = nullptr;
    bool verbose = false;  // one line per epoch on stdout
};

struct qat_result {
    double loss_before = 0, loss_after = 0;  // mean KL(float || int8) over the images
    std::vector<double> epoch_loss;          // the same after each epoch
    std::size_t steps = 0;
    std::size_t kept_epoch = 0;  // the epoch whose weights were kept (0: none lowered the loss)
};

// One image's run, as backward reads it: the real value of every tensor, and where the
// gradient of each op's output passes (1) or was clipped by the forward (0).
struct qat_tape {
    std::vector<std::vector<float>> value;        // per tensor
    std::vector<std::vector<std::uint8_t>> pass;  // per tensor (index 0, the input, unused)
};

// Gradients of every conv's weights and bias (empty for other ops).
struct qat_gradients {
    std::vector<std::vector<float>> weight, bias;
    explicit qat_gradients(const qmodel& m) : weight(m.ops.size()), bias(m.ops.size()) {
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<qconv>(&m.ops[i])) {
                weight[i].assign(c->weight.size(), 0.f);
                bias[i].assign(c->cout, 0.f);
            }
    }
    void zero() {
        for (auto& v : weight) std::fill(v.begin(), v.end(), 0.f);
        for (auto& v : bias) std::fill(v.begin(), v.end(), 0.f);
    }
    void add(const qat_gradients& o) {
        for (std::size_t i = 0; i < weight.size(); ++i) {
            for (std::size_t j = 0; j < weight[i].size(); ++j) weight[i][j] += o.weight[i][j];
            for (std::size_t j = 0; j < bias[i].size(); ++j) bias[i][j] += o.bias[i][j];
        }
    }
};

namespace detail {

// Every tap of a conv's unfolded window over one image: f(column element, map element), the
// columns [(ci, ky, kx)][(oy, ox)], the map element `outside` where the tap reads padding.
inline constexpr std::size_t outside = static_cast<std::size_t>(-1);
template <class F>
void for_each_window_tap(const conv_window& g, std::size_t h, std::size_t w, F&& f) {
    std::size_t at = 0;
    for (std::size_t ci = 0; ci < g.cin; ++ci)
        for (std::size_t ky = 0; ky < g.kh; ++ky)
            for (std::size_t kx = 0; kx < g.kw; ++kx)
                for (std::size_t oy = 0; oy < g.oh; ++oy) {
                    const auto iy =
                        static_cast<std::ptrdiff_t>(oy * g.stride + ky) - static_cast<std::ptrdiff_t>(g.pad);
                    for (std::size_t ox = 0; ox < g.ow; ++ox, ++at) {
                        const auto ix =
                            static_cast<std::ptrdiff_t>(ox * g.stride + kx) - static_cast<std::ptrdiff_t>(g.pad);
                        const bool in = iy >= 0 && ix >= 0 && iy < static_cast<std::ptrdiff_t>(h) &&
                                        ix < static_cast<std::ptrdiff_t>(w);
                        f(at,
                          in ? (ci * h + static_cast<std::size_t>(iy)) * w + static_cast<std::size_t>(ix) : outside);
                    }
                }
}

// Where the gradient of an int8 output passes: not where the forward clipped it.
inline std::uint8_t passes(std::int8_t q, activation a, int fp_out) {
    const auto r = dpu::activation_range(a, fp_out);
    return q > r.lo && q < r.hi;
}

}  // namespace detail

// The tape of the last run of `t` (built from m, which holds its weights).
inline void record_int8_tape(const qmodel& m, const target::int8_target& t, qat_tape& tape,
                             std::vector<std::int8_t>& scratch) {
    const std::size_t n = m.tensor_count();
    tape.value.resize(n);
    tape.pass.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t size = m.dims(k).size();
        scratch.resize(size);
        t.tensor(k, scratch.data());
        const float step = std::ldexp(1.f, -m.fix_point(k));
        auto& v = tape.value[k];
        v.resize(size);
        for (std::size_t j = 0; j < size; ++j) v[j] = static_cast<float>(scratch[j]) * step;
        if (k == 0) continue;
        auto& p = tape.pass[k];
        p.resize(size);
        const auto& op = m.ops[k - 1];
        const activation a = activation_of(op);
        // A max pool and a concat copy values: nothing is clipped there.
        const bool copies = std::holds_alternative<qmax_pool>(op) || std::holds_alternative<qconcat>(op);
        const int fp = m.fix_point(k);
        for (std::size_t j = 0; j < size; ++j) p[j] = copies ? 1 : detail::passes(scratch[j], a, fp);
    }
}

// Gradients of one image. `weights` are the weights each conv op used in the forward (per op,
// empty for others); `grad` holds one vector per tensor: the caller sets the last tensor's
// (dL/d output), every other one is overwritten. Conv weight and bias gradients are added to
// g. The input's gradient is not formed.
inline void qat_backward(const qmodel& m, const qat_tape& tape, const std::vector<std::vector<float>>& weights,
                         std::vector<std::vector<float>>& grad, qat_gradients& g, std::vector<float>& ws) {
    const std::size_t tensors = m.tensor_count();
    grad.resize(tensors);
    for (std::size_t k = 1; k + 1 < tensors; ++k) grad[k].assign(m.dims(k).size(), 0.f);
    for (std::size_t i = m.ops.size(); i-- > 0;) {
        auto& dy = grad[i + 1];
        const auto& pass = tape.pass[i + 1];
        for (std::size_t j = 0; j < dy.size(); ++j)
            if (!pass[j]) dy[j] = 0.f;
        const auto& in = base_of(m.ops[i]).inputs;
        float* dx = in[0] == 0 ? nullptr : grad[in[0]].data();
        const tensor_dims d_in = m.dims(in[0]);
        std::visit(
            overloaded{
                [&](const qconv& c) {
                    const auto& x = tape.value[in[0]];
                    const auto& w = weights[i];
                    auto& dw = g.weight[i];
                    auto& db = g.bias[i];
                    const std::size_t P = c.oh * c.ow;
                    for (std::size_t o = 0; o < c.cout; ++o) {
                        float s = 0;
                        for (std::size_t p = 0; p < P; ++p) s += dy[o * P + p];
                        db[o] += s;
                    }
                    if (c.depthwise()) {
                        const std::size_t k = c.k;
                        for (std::size_t ch = 0; ch < c.cout; ++ch)
                            for (std::size_t oy = 0; oy < c.oh; ++oy)
                                for (std::size_t ox = 0; ox < c.ow; ++ox) {
                                    const float e = dy[(ch * c.oh + oy) * c.ow + ox];
                                    if (e == 0.f) continue;
                                    for (std::size_t ky = 0; ky < k; ++ky) {
                                        const auto iy = static_cast<std::ptrdiff_t>(oy * c.stride + ky) -
                                                        static_cast<std::ptrdiff_t>(c.pad);
                                        if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(c.h)) continue;
                                        for (std::size_t kx = 0; kx < k; ++kx) {
                                            const auto ix = static_cast<std::ptrdiff_t>(ox * c.stride + kx) -
                                                            static_cast<std::ptrdiff_t>(c.pad);
                                            if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(c.w)) continue;
                                            const std::size_t at = (ch * c.h + static_cast<std::size_t>(iy)) * c.w +
                                                                   static_cast<std::size_t>(ix);
                                            dw[(ch * k + ky) * k + kx] += e * x[at];
                                            if (dx) dx[at] += e * w[(ch * k + ky) * k + kx];
                                        }
                                    }
                                }
                        return;
                    }
                    const auto g_ = window_of(c, d_in.c, d_in.h, d_in.w, "quant::qat_backward", i);
                    const std::size_t taps = c.taps();
                    const bool direct = g_.kh == 1 && g_.kw == 1 && g_.stride == 1 && g_.pad == 0;
                    const float* cols = x.data();
                    if (!direct) {
                        ws.resize(2 * taps * P);
                        float* col = ws.data();
                        detail::for_each_window_tap(g_, d_in.h, d_in.w, [&](std::size_t j, std::size_t at) {
                            col[j] = at == detail::outside ? 0.f : x[at];
                        });
                        cols = col;
                    }
                    // dW [cout][taps] += dY [cout][P] cols^T; dcols [taps][P] = W^T dY.
                    kernels::gemm(false, true, c.cout, taps, P, dy.data(), P, cols, P, dw.data(), taps, true);
                    if (!dx) return;
                    if (direct) {
                        kernels::gemm(true, false, taps, P, c.cout, w.data(), taps, dy.data(), P, dx, P, true);
                    } else {
                        float* dcols = ws.data() + taps * P;
                        kernels::gemm(true, false, taps, P, c.cout, w.data(), taps, dy.data(), P, dcols, P, false);
                        detail::for_each_window_tap(g_, d_in.h, d_in.w, [&](std::size_t j, std::size_t at) {
                            if (at != detail::outside) dx[at] += dcols[j];
                        });
                    }
                },
                [&](const qmax_pool& p) {
                    if (!dx) return;
                    const auto& x = tape.value[in[0]];
                    // To the first largest value of each window (the max the forward kept).
                    for (std::size_t ch = 0; ch < p.c; ++ch)
                        for (std::size_t oy = 0; oy < p.oh; ++oy)
                            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                                std::size_t best = (ch * p.h + oy * p.stride) * p.w + ox * p.stride;
                                for (std::size_t ky = 0; ky < p.k; ++ky)
                                    for (std::size_t kx = 0; kx < p.k; ++kx) {
                                        const std::size_t at =
                                            (ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx;
                                        if (x[at] > x[best]) best = at;
                                    }
                                dx[best] += dy[(ch * p.oh + oy) * p.ow + ox];
                            }
                },
                [&](const qavg_pool& p) {
                    if (!dx) return;
                    const auto s = dpu::avg_pool_scale(p.k, p.k);
                    const float f = static_cast<float>(std::ldexp(static_cast<double>(s.n), -s.m));
                    for (std::size_t ch = 0; ch < p.c; ++ch)
                        for (std::size_t oy = 0; oy < p.oh; ++oy)
                            for (std::size_t ox = 0; ox < p.ow; ++ox) {
                                const float e = f * dy[(ch * p.oh + oy) * p.ow + ox];
                                for (std::size_t ky = 0; ky < p.k; ++ky)
                                    for (std::size_t kx = 0; kx < p.k; ++kx)
                                        dx[(ch * p.h + oy * p.stride + ky) * p.w + ox * p.stride + kx] += e;
                            }
                },
                [&](const qadd&) {
                    for (auto t : in)
                        if (t != 0)
                            for (std::size_t j = 0; j < dy.size(); ++j) grad[t][j] += dy[j];
                },
                [&](const qconcat&) {
                    std::size_t at = 0;
                    for (auto t : in) {
                        const std::size_t size = m.dims(t).size();
                        if (t != 0)
                            for (std::size_t j = 0; j < size; ++j) grad[t][j] += dy[at + j];
                        at += size;
                    }
                }},
            m.ops[i]);
    }
}

namespace detail {

// One shard's buffers: its own int8 path (activation maps), tape and gradients.
struct qat_shard {
    target::int8_target t;
    qat_tape tape;
    qat_gradients g;
    std::vector<std::vector<float>> grad;
    std::vector<float> ws, out;
    std::vector<double> p;
    std::vector<std::int8_t> bytes;
    explicit qat_shard(const qmodel& m) : t(m), g(m), out(m.outputs()), p(m.outputs()) {}
};

}  // namespace detail

// Fine-tunes the weights and biases of calibrated model m on n images ([C][H][W] each, one
// after another) towards `teacher`: the float network's outputs for them (n x outputs
// logits, image after image). Fix points do not move; m's int8 tensors are those of the final
// weights.
inline qat_result qat_finetune(qmodel& m, const float* images, const float* teacher, std::size_t n,
                               const qat_options& o = {}) {
    const std::string where = "quant::qat_finetune";
    validate_calibrated(m, where);
    if (n == 0) fail(where, "no image to fine-tune on");
    if (o.batch == 0 || o.shards == 0) fail(where, "the batch and the shard count must be at least 1");
    if (!(o.lr > 0) || !std::isfinite(o.lr)) fail(where, "the learning rate must be a positive number");
    if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
        fail(where, "Adam's betas must lie in [0, 1)");
    const std::size_t in = m.c * m.h * m.w, k = m.outputs();
    std::vector<double> target(n * k);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < k; ++j)
            if (!std::isfinite(teacher[i * k + j]))
                fail(where, "the float network's output for image " + std::to_string(i) + " is not finite");
        detail::softmax(teacher + i * k, k, target.data() + i * k);
    }

    std::vector<detail::qat_shard> shards;
    for (std::size_t s = 0; s < o.shards; ++s) shards.emplace_back(m);
    // Each image's loss by the shards, summed in image order (the same on any thread count).
    std::vector<double> losses(n);
    auto mean_loss = [&] {
        parallel_for(o.pool, shards.size(), 1, [&](std::size_t s0, std::size_t s1) {
            for (std::size_t s = s0; s < s1; ++s) {
                auto& sh = shards[s];
                for (std::size_t i = s; i < n; i += shards.size()) {
                    sh.t.run(images + i * in, sh.out.data());
                    losses[i] = detail::kl_to(target.data() + i * k, sh.out.data(), k, sh.p.data(), nullptr, 0);
                }
            }
        });
        double sum = 0;
        for (double l : losses) sum += l;
        return sum / static_cast<double>(n);
    };
    qat_result r;
    r.loss_before = mean_loss();
    double best_loss = r.loss_before;
    qmodel best = m;
    const std::size_t total_steps = o.epochs * ((n + o.batch - 1) / o.batch);

    // Adam's moments per conv.
    qat_gradients mom1(m), mom2(m), total(m);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    rng gen(o.seed);
    double b1t = 1, b2t = 1;
    // The weights the forward uses: the int8 ones, dequantized.
    std::vector<std::vector<float>> used(m.ops.size());
    auto dequantize_weights = [&] {
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<qconv>(&m.ops[i])) {
                used[i].resize(c->qweight.size());
                for (std::size_t j = 0; j < used[i].size(); ++j) used[i][j] = dequantize(c->qweight[j], c->fp_w);
            }
    };
    dequantize_weights();
    for (std::size_t epoch = 0; epoch < o.epochs; ++epoch) {
        gen.shuffle(order);
        for (std::size_t b0 = 0; b0 < n; b0 += o.batch) {
            const std::size_t bn = std::min(o.batch, n - b0);
            const double scale = 1.0 / static_cast<double>(bn);
            parallel_for(o.pool, shards.size(), 1, [&](std::size_t s0, std::size_t s1) {
                for (std::size_t s = s0; s < s1; ++s) {
                    auto& sh = shards[s];
                    sh.g.zero();
                    for (std::size_t j = s; j < bn; j += shards.size()) {
                        const std::size_t img = order[b0 + j];
                        sh.t.run(images + img * in, sh.out.data());
                        record_int8_tape(m, sh.t, sh.tape, sh.bytes);
                        sh.grad.resize(m.tensor_count());
                        auto& dz = sh.grad.back();
                        dz.resize(k);
                        detail::kl_to(target.data() + img * k, sh.tape.value.back().data(), k, sh.p.data(), dz.data(),
                                      scale);
                        qat_backward(m, sh.tape, used, sh.grad, sh.g, sh.ws);
                    }
                }
            });
            total.zero();
            for (auto& sh : shards) total.add(sh.g);
            // Adam, each tensor's step in its own quantization steps; weights stay representable.
            b1t *= o.beta1;
            b2t *= o.beta2;
            const double lr =
                o.lr * 0.5 *
                (1 + std::cos(std::acos(-1.0) * static_cast<double>(r.steps) / static_cast<double>(total_steps)));
            auto update = [&](std::vector<float>& v, const std::vector<float>& gr, std::vector<float>& m1,
                              std::vector<float>& m2, int fp) {
                const double unit = std::ldexp(1.0, -fp), lo = qmin * unit, hi = qmax * unit;
                for (std::size_t j = 0; j < v.size(); ++j) {
                    m1[j] = static_cast<float>(o.beta1 * m1[j] + (1 - o.beta1) * gr[j]);
                    m2[j] = static_cast<float>(o.beta2 * m2[j] + (1 - o.beta2) * double{gr[j]} * gr[j]);
                    const double mh = m1[j] / (1 - b1t), vh = m2[j] / (1 - b2t);
                    const double step = lr * unit * mh / (std::sqrt(vh) + 1e-12);
                    v[j] = static_cast<float>(std::clamp(v[j] - step, lo, hi));
                }
            };
            for (std::size_t i = 0; i < m.ops.size(); ++i)
                if (auto* c = std::get_if<qconv>(&m.ops[i])) {
                    update(c->weight, total.weight[i], mom1.weight[i], mom2.weight[i], c->fp_w);
                    update(c->bias, total.bias[i], mom1.bias[i], mom2.bias[i], c->fp_b);
                    calibrator::quantize_tensors(*c);
                }
            dequantize_weights();
            for (auto& sh : shards) sh.t = target::int8_target(m);
            ++r.steps;
        }
        r.epoch_loss.push_back(mean_loss());
        if (r.epoch_loss.back() < best_loss) {
            best_loss = r.epoch_loss.back();
            best = m;
            r.kept_epoch = epoch + 1;
        }
        if (o.verbose) {
            std::printf("  QAT epoch %zu: mean KL to float %.5f\n", epoch + 1, r.epoch_loss.back());
            std::fflush(stdout);
        }
    }
    m = std::move(best);
    r.loss_after = best_loss;
    validate_calibrated(m, where);
    return r;
}

}  // namespace sgp::quant
