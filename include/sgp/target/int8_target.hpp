#pragma once
// Integer-only inference of a calibrated qmodel, fast: the same integers as int8_reference
// (the DPU's arithmetic, quant/dpu_arithmetic.hpp), computed by kernels/int8_conv.hpp (dense
// convolutions), int8_depthwise.hpp (depthwise convolutions, average pools) and
// int8_eltwise.hpp (adds), with AVX512-VNNI where the compiler targets it and portable lanes
// otherwise. Everything is packed once at
// construction (weights, per-channel offsets, activation buffers with their borders); a run
// allocates nothing. A linear layer after a flatten runs as a convolution whose kernel covers
// the whole map (the same sums in the layout of the fast path).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/error.hpp"
#include "sgp/kernels/int8_conv.hpp"
#include "sgp/kernels/int8_depthwise.hpp"
#include "sgp/kernels/int8_eltwise.hpp"
#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/dpu_arithmetic.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::target {

#if defined(SGP_INT8_VNNI)
struct vnni_lanes {
    using narrow = kernels::int8::vnni8;
    using wide = kernels::int8::vnni16;
};
using default_int8_lanes = vnni_lanes;
#endif
struct portable_lanes {
    using narrow = kernels::int8::portable;
    using wide = kernels::int8::portable;
};
#if !defined(SGP_INT8_VNNI)
using default_int8_lanes = portable_lanes;
#endif

// (sum q w + b 2^sb) / 2^cut rounded half up = (sum q w + offset) >> cut: the offset of a
// conv2d-fix's output channel with int8 bias b, before the 128 correction. For sb < 0 the
// bias's share is floored first (exact: the sum is an integer).
inline std::int64_t rounding_offset(std::int64_t b, int cut, int sb) {
    if (sb >= 0) return b * (std::int64_t{1} << sb) + (cut > 0 ? std::int64_t{1} << (cut - 1) : 0);
    return (b + (std::int64_t{1} << (cut - sb - 1))) >> -sb;
}

// Lanes: a pair of lane policies, `narrow` for layers with few output channels, `wide` else.
template <class Lanes = default_int8_lanes>
class basic_int8_target {
    // An activation map in the fast layout: [h + 2 border][w + 2 border][c4] biased bytes.
    struct map {
        std::size_t c = 0, c4 = 0, h = 0, w = 0, border = 0;
        aligned_buffer<std::uint8_t> bytes;
        std::size_t row() const { return (w + 2 * border) * c4; }
        std::uint8_t* origin() { return bytes.data() + border * row() + border * c4; }
        // The top-left tap of a window padded by p <= border.
        std::uint8_t* corner(std::size_t p) { return origin() - p * row() - p * c4; }
    };
    struct conv_step {
        kernels::int8::conv_args args;  // pointers set at construction
        aligned_buffer<std::int8_t> weight;
        std::vector<std::int32_t> offset;
        std::vector<std::uint32_t> steps;
        void (*run)(const kernels::int8::conv_args&) = nullptr;
    };
    struct window_step {  // depthwise conv, average pool
        kernels::int8::window_args args;
        aligned_buffer<std::int32_t> weight, offset;
    };
    struct max_pool_step {
        std::size_t in = 0, out = 0, k = 1, stride = 1;
    };
    struct add_step {
        kernels::int8::add_args args;
        std::vector<std::size_t> in;
        std::size_t out = 0;
    };
    struct concat_step {
        std::vector<std::size_t> in;
        std::size_t out = 0;
    };
    using step = std::variant<conv_step, window_step, max_pool_step, add_step, concat_step>;

public:
    explicit basic_int8_target(const quant::qmodel& m) : fp_in_(m.fp_in) {
        quant::validate_calibrated(m, "int8_target");
        // One map per tensor; its border is the widest padding of the ops that read it.
        maps_.resize(m.tensor_count());
        for (std::size_t t = 0; t < maps_.size(); ++t) {
            const auto d = m.dims(t);
            maps_[t].c = d.c, maps_[t].h = d.h, maps_[t].w = d.w;
        }
        for (std::size_t i = 0; i < m.ops.size(); ++i)
            if (const auto* c = std::get_if<quant::qconv>(&m.ops[i])) {
                map& in = maps_[c->inputs[0]];
                in.border = std::max(in.border, quant::window_of(*c, in.c, in.h, in.w, "int8_target", i).pad);
            }
        for (auto& a : maps_) {
            a.c4 = (a.c + 3) / 4 * 4;
            a.bytes.resize((a.h + 2 * a.border) * a.row());
            a.bytes.fill(kernels::int8::zero_byte);  // borders and padding channels stay zero
        }
        steps_.reserve(m.ops.size());
        for (std::size_t i = 0; i < m.ops.size(); ++i) {
            const auto& in = quant::base_of(m.ops[i]).inputs;
            std::visit(quant::overloaded{[&](const quant::qconv& c) {
                                             if (c.depthwise())
                                                 pack_depthwise(c, m.fix_point(in[0]), in[0], i + 1, i);
                                             else
                                                 pack(c, m.fix_point(in[0]), in[0], i + 1, i);
                                         },
                                         [&](const quant::qmax_pool& p) {
                                             steps_.emplace_back(max_pool_step{in[0], i + 1, p.k, p.stride});
                                         },
                                         [&](const quant::qavg_pool& p) { pack_avg_pool(p, in[0], i + 1, i); },
                                         [&](const quant::qadd& a) { pack_add(m, a, i); },
                                         [&](const quant::qconcat&) {
                                             steps_.emplace_back(concat_step{in, i + 1});
                                         }},
                       m.ops[i]);
        }
        fp_out_ = m.fix_point(m.output_tensor());
        std::size_t widest = 0;
        for (const auto& a : maps_) widest = std::max(widest, a.row());
        scratch_.resize(widest);
        out_q_.resize(maps_.back().c * maps_.back().h * maps_.back().w);
    }

    // The kernels hold pointers into the buffers: movable (the buffers stay), not copyable.
    basic_int8_target(const basic_int8_target&) = delete;
    basic_int8_target& operator=(const basic_int8_target&) = delete;
    basic_int8_target(basic_int8_target&&) noexcept = default;
    basic_int8_target& operator=(basic_int8_target&&) noexcept = default;

    std::size_t outputs() const { return out_q_.size(); }
    int input_fix_point() const { return fp_in_; }
    int output_fix_point() const { return fp_out_; }
    static const char* lanes_name() { return Lanes::wide::name; }

    // One image x ([C][H][W] float) -> out (outputs() floats, [C][H][W], dequantized).
    void run(const float* x, float* out) {
        run(x, out, [](std::size_t) {});
    }
    // The same, calling after_step(s) after each step: 0 the input's quantization, i + 1 op i,
    // ops + 1 the output's dequantization (per-op timing, analysis/profile.hpp).
    template <std::invocable<std::size_t> F>
    void run(const float* x, float* out, F&& after_step) {
        quantize_input(x);
        after_step(std::size_t{0});
        for (std::size_t i = 0; i < steps_.size(); ++i) {
            std::visit(quant::overloaded{[](conv_step& s) { s.run(s.args); },
                                         [](window_step& s) { kernels::int8::depthwise(s.args); },
                                         [&](max_pool_step& s) {
                                             map& a = maps_[s.in];
                                             map& b = maps_[s.out];
                                             kernels::int8::max_pool(a.origin(), a.c4, a.row(), s.k, s.stride, b.h, b.w,
                                                                     b.origin(), b.row(), scratch_.data());
                                         },
                                         [&](add_step& s) { run_add(s); }, [&](concat_step& s) { run_concat(s); }},
                       steps_[i]);
            after_step(i + 1);
        }
        read_output(out);
        after_step(steps_.size() + 1);
    }
    std::size_t op_count() const { return steps_.size(); }
    // n images, one after another.
    void run(const float* x, float* out, std::size_t n) {
        const std::size_t in = maps_[0].c * maps_[0].h * maps_[0].w;
        for (std::size_t i = 0; i < n; ++i) run(x + i * in, out + i * outputs());
    }
    // The int8 output of the last run, [C][H][W] (before dequantisation).
    const std::vector<std::int8_t>& last_output() const { return out_q_; }
    // Tensor t of the last run (0: the quantized input, i + 1: op i's output) into out,
    // [C][H][W]: what quantization-aware training reads back (quant/qat.hpp).
    void tensor(std::size_t t, std::int8_t* out) const {
        const map& a = maps_.at(t);
        const std::uint8_t* o = a.bytes.data() + a.border * a.row() + a.border * a.c4;
        for (std::size_t y = 0; y < a.h; ++y)
            for (std::size_t x = 0; x < a.w; ++x) {
                const std::uint8_t* px = o + y * a.row() + x * a.c4;
                for (std::size_t ch = 0; ch < a.c; ++ch)
                    out[(ch * a.h + y) * a.w + x] = static_cast<std::int8_t>(static_cast<int>(px[ch]) - 128);
            }
    }

private:
    static std::int32_t activation_low(quant::activation a) {
        return static_cast<std::int32_t>(quant::dpu::activation_range(a, 0).lo);
    }
    static std::int32_t activation_high(quant::activation a, int fp_out) {
        return static_cast<std::int32_t>(quant::dpu::activation_range(a, fp_out).hi);
    }
    static std::int32_t checked_offset(std::int64_t k, std::size_t index) {
        if (k < std::numeric_limits<std::int32_t>::min() / 2 || k > std::numeric_limits<std::int32_t>::max() / 2)
            fail("int8_target", "op " + std::to_string(index) + ": the bias offset does not fit int32");
        return static_cast<std::int32_t>(k);
    }
    // Every partial sum of biased bytes must be an exact int32.
    static void check_sums(double taps, double max_weight, std::size_t index) {
        if (taps * 255.0 * max_weight >= 2147483647.0 / 2)
            fail("int8_target", "op " + std::to_string(index) + ": " + std::to_string(static_cast<std::size_t>(taps)) +
                                    " taps per output overflow int32 sums");
    }

    template <class L>
    void pack_with(conv_step& o, const quant::qconv& c, int fp, std::size_t in_t, std::size_t out_t,
                   std::size_t index) {
        map& in = maps_[in_t];
        map& out = maps_[out_t];
        const auto win = quant::window_of(c, in.c, in.h, in.w, "int8_target", index);
        const std::size_t kh = win.kh, kw = win.kw, cin = win.cin, c4 = in.c4;
        const std::size_t cout_pad = (c.cout + L::lanes - 1) / L::lanes * L::lanes;
        const auto [cut, sb] = quant::checked_shifts(c, fp, "int8_target", index);
        check_sums(static_cast<double>(kh * kw * c4), 128.0, index);
        o.weight.resize(kh * kw * c4 * cout_pad);
        o.offset.assign(cout_pad, 0);
        for (std::size_t oc = 0; oc < c.cout; ++oc) {
            std::int64_t sum_w = 0;
            for (std::size_t ci = 0; ci < cin; ++ci)
                for (std::size_t ky = 0; ky < kh; ++ky)
                    for (std::size_t kx = 0; kx < kw; ++kx) {
                        // qconv holds [cout][cin][k][k]; a flattened input is [c][h][w] per image.
                        const std::int8_t wv = c.qweight[((oc * cin + ci) * kh + ky) * kw + kx];
                        o.weight[(((ky * kw + kx) * (c4 / 4) + ci / 4) * cout_pad + oc) * 4 + ci % 4] = wv;
                        sum_w += wv;
                    }
            o.offset[oc] = checked_offset(rounding_offset(c.qbias[oc], cut, sb) - 128 * sum_w, index);
        }
        auto& g = o.args;
        g.in = in.corner(win.pad);
        g.in_c4 = c4, g.in_row = in.row();
        g.kh = kh, g.kw = kw, g.stride = win.stride;
        g.oh = out.h, g.ow = out.w;
        g.out_c4 = out.c4;
        g.out = out.origin(), g.out_row = out.row();
        for (std::size_t ky = 0; ky < kh; ++ky)
            for (std::size_t kx = 0; kx < kw; ++kx)
                for (std::size_t q = 0; q < c4 / 4; ++q)
                    o.steps.push_back(static_cast<std::uint32_t>(ky * g.in_row + kx * c4 + 4 * q));
        g.step_offset = o.steps.data(), g.steps = o.steps.size();
        g.weight = o.weight.data(), g.cout_pad = cout_pad, g.offset = o.offset.data();
        g.cut = cut, g.lo = activation_low(c.act), g.hi = activation_high(c.act, c.fp_out);
        o.run = &kernels::int8::conv<L>;
    }
    void pack(const quant::qconv& c, int fp, std::size_t in_t, std::size_t out_t, std::size_t index) {
        auto& o = std::get<conv_step>(steps_.emplace_back(std::in_place_type<conv_step>));
        if (c.cout <= Lanes::narrow::lanes)
            pack_with<typename Lanes::narrow>(o, c, fp, in_t, out_t, index);
        else
            pack_with<typename Lanes::wide>(o, c, fp, in_t, out_t, index);
    }
    // A per-channel window: weights [k * k][c16] (w(ch, tap)), offsets from offset(ch, sum of w).
    template <class W, class Offset>
    void pack_window(std::size_t c, std::size_t k, std::size_t stride, std::size_t pad, int cut, std::int32_t lo,
                     std::int32_t hi, std::size_t in_t, std::size_t out_t, std::size_t index, W&& w, Offset&& offset) {
        auto& o = std::get<window_step>(steps_.emplace_back(std::in_place_type<window_step>));
        map& in = maps_[in_t];
        map& out = maps_[out_t];
        const std::size_t c16 = kernels::int8::round16(c), taps = k * k;
        o.weight.resize(taps * c16);
        o.offset.resize(c16);
        double max_w = 0;
        for (std::size_t ch = 0; ch < c; ++ch) {
            std::int64_t sum_w = 0;
            for (std::size_t t = 0; t < taps; ++t) {
                const std::int32_t v = w(ch, t);
                o.weight[t * c16 + ch] = v;
                sum_w += v;
                max_w = std::max(max_w, std::abs(static_cast<double>(v)));
            }
            o.offset[ch] = checked_offset(offset(ch) - 128 * sum_w, index);
        }
        check_sums(static_cast<double>(taps), max_w, index);
        auto& g = o.args;
        g.in = in.corner(pad), g.c = c, g.c4 = in.c4;
        g.in_row = in.row(), g.out_row = out.row();
        g.k = k, g.stride = stride, g.oh = out.h, g.ow = out.w;
        g.out = out.origin();
        g.weight = o.weight.data(), g.offset = o.offset.data();
        g.cut = cut, g.lo = lo, g.hi = hi;
    }
    void pack_depthwise(const quant::qconv& c, int fp, std::size_t in_t, std::size_t out_t, std::size_t index) {
        const auto [cut, sb] = quant::checked_shifts(c, fp, "int8_target", index);
        const std::size_t taps = c.k * c.k;
        pack_window(
            c.cout, c.k, c.stride, c.pad, cut, activation_low(c.act), activation_high(c.act, c.fp_out), in_t, out_t,
            index, [&](std::size_t ch, std::size_t t) { return std::int32_t{c.qweight[ch * taps + t]}; },
            // Explicit captures: clang before 16 cannot capture structured bindings.
            [&, cut = cut, sb = sb](std::size_t ch) { return rounding_offset(c.qbias[ch], cut, sb); });
    }
    // The DPU's average: the sum times N, DPU_ROUND of a shift by M: a window of weights N.
    void pack_avg_pool(const quant::qavg_pool& p, std::size_t in_t, std::size_t out_t, std::size_t index) {
        const auto s = quant::dpu::avg_pool_scale(p.k, p.k);
        pack_window(
            p.c, p.k, p.stride, 0, s.m, -128, 127, in_t, out_t, index,
            [&](std::size_t, std::size_t) { return static_cast<std::int32_t>(s.n); },
            [&](std::size_t) { return rounding_offset(0, s.m, 0); });
    }
    void pack_add(const quant::qmodel& m, const quant::qadd& a, std::size_t index) {
        add_step o;
        o.in = a.inputs, o.out = index + 1;
        if (a.inputs.size() > kernels::int8::add_args::max_inputs)
            fail("int8_target", "op " + std::to_string(index) + ": an add of more than " +
                                    std::to_string(kernels::int8::add_args::max_inputs) + " tensors");
        std::vector<int> fps;
        for (auto t : a.inputs) fps.push_back(m.fix_point(t));
        const auto sh = quant::dpu::add_shifts(fps, a.fp_out);
        o.args.inputs = a.inputs.size();
        for (std::size_t k = 0; k < a.inputs.size(); ++k) o.args.read[k] = 7 - sh.read[k];
        o.args.write = sh.write + 7;
        o.args.lo = activation_low(a.act);
        steps_.emplace_back(std::move(o));
    }
    void run_add(add_step& s) {
        map& y = maps_[s.out];
        const std::uint8_t* x[kernels::int8::add_args::max_inputs];
        for (std::size_t r = 0; r < y.h; ++r) {
            for (std::size_t k = 0; k < s.in.size(); ++k) x[k] = maps_[s.in[k]].origin() + r * maps_[s.in[k]].row();
            kernels::int8::add_row(s.args, x, y.origin() + r * y.row(), y.w * y.c4);
        }
    }
    void run_concat(concat_step& s) {
        map& y = maps_[s.out];
        for (std::size_t r = 0; r < y.h; ++r)
            for (std::size_t px = 0; px < y.w; ++px) {
                std::uint8_t* dst = y.origin() + r * y.row() + px * y.c4;
                for (auto t : s.in) {
                    map& a = maps_[t];
                    std::memcpy(dst, a.origin() + r * a.row() + px * a.c4, a.c);
                    dst += a.c;
                }
            }
    }

    void quantize_input(const float* x) {
        map& a = maps_[0];
        // DPU_ROUND(x 2^fp) in float: scaling by a power of two is exact, and after the clamp
        // adding 0.5 is too; NaN becomes 0 as in quant::quantize.
        const float scale = std::ldexp(1.f, fp_in_);
        const std::size_t plane = a.h * a.w;
        for (std::size_t ch = 0; ch < a.c; ++ch)
            for (std::size_t y = 0; y < a.h; ++y) {
                std::uint8_t* row = a.origin() + y * a.row() + ch;
                const float* src = x + ch * plane + y * a.w;
                for (std::size_t i = 0; i < a.w; ++i) {
                    float v = src[i] * scale;
                    v = v != v ? 0.f : std::clamp(v, -129.f, 128.f);
                    const float r = std::clamp(std::floor(v + 0.5f), -128.f, 127.f);
                    row[i * a.c4] = static_cast<std::uint8_t>(static_cast<int>(r) + 128);
                }
            }
    }
    void read_output(float* out) {
        map& a = maps_.back();
        const float scale = std::ldexp(1.f, -fp_out_);
        for (std::size_t ch = 0; ch < a.c; ++ch)
            for (std::size_t y = 0; y < a.h; ++y)
                for (std::size_t i = 0; i < a.w; ++i) {
                    const auto q =
                        static_cast<std::int8_t>(static_cast<int>(a.origin()[y * a.row() + i * a.c4 + ch]) - 128);
                    const std::size_t j = (ch * a.h + y) * a.w + i;
                    out_q_[j] = q;
                    out[j] = static_cast<float>(q) * scale;
                }
    }

    int fp_in_ = 0, fp_out_ = 0;
    std::vector<map> maps_;
    std::vector<step> steps_;
    std::vector<std::int8_t> out_q_;
    aligned_buffer<std::uint8_t> scratch_;  // one row of a max pool's input
};

using int8_target = basic_int8_target<>;

}  // namespace sgp::target
