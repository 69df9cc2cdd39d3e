#pragma once
// Integer-only inference of a calibrated qmodel, fast: the same integers as int8_reference
// (the DPU's conv2d-fix arithmetic), computed by kernels/int8_conv.hpp with AVX512-VNNI where
// the compiler targets it and portable int32 lanes otherwise. Everything is packed once at
// construction (weights, per-channel offsets, activation buffers with their borders); a run
// allocates nothing. A linear layer after a flatten runs as a convolution whose kernel covers
// the whole map (the same sums in the layout of the fast path).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/error.hpp"
#include "sgp/kernels/int8_conv.hpp"
#include "sgp/quant/calibrate.hpp"
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

// Lanes: a pair of lane policies, `narrow` for layers with few output channels, `wide` else.
template <class Lanes = default_int8_lanes>
class basic_int8_target {
    // An activation map in the fast layout: [h + 2 border][w + 2 border][c4] biased bytes.
    struct map {
        std::size_t c = 0, c4 = 0, h = 0, w = 0, border = 0;
        aligned_buffer<std::uint8_t> bytes;
        std::size_t row() const { return (w + 2 * border) * c4; }
        std::uint8_t* origin() { return bytes.data() + border * row() + border * c4; }
    };
    struct op {
        bool pool = false;
        kernels::int8::conv_args args;  // pointers set at construction
        aligned_buffer<std::int8_t> weight;
        std::vector<std::int32_t> offset;
        std::vector<std::uint32_t> steps;
        void (*run)(const kernels::int8::conv_args&) = nullptr;
        std::size_t k = 1, stride = 1;  // pool
        std::size_t in = 0, out = 0;    // map indices
    };

public:
    explicit basic_int8_target(const quant::qmodel& m) : fp_in_(m.fp_in) {
        if (m.ops.empty()) fail("int8_target", "the model has no operations");
        // Maps: the input, then one per op; each map's border is its consumer's padding.
        maps_.resize(m.ops.size() + 1);
        maps_[0].c = m.c, maps_[0].h = m.h, maps_[0].w = m.w;
        for (std::size_t i = 0; i < m.ops.size(); ++i) {
            map& in = maps_[i];
            map& out = maps_[i + 1];
            if (const auto* c = std::get_if<quant::qconv>(&m.ops[i])) {
                quant::require_calibrated(*c, "int8_target");
                in.border = quant::window_of(*c, in.c, in.h, in.w, "int8_target", i).pad;
                out.c = c->cout, out.h = c->oh, out.w = c->ow;
            } else {
                const auto& p = std::get<quant::qmax_pool>(m.ops[i]);
                if (p.c != in.c || p.h != in.h || p.w != in.w)
                    fail("int8_target", "op " + std::to_string(i) + " (max pool) does not match the op before");
                out.c = p.c, out.h = p.oh, out.w = p.ow;
            }
        }
        for (auto& a : maps_) {
            a.c4 = (a.c + 3) / 4 * 4;
            a.bytes.resize((a.h + 2 * a.border) * a.row());
            a.bytes.fill(kernels::int8::zero_byte);  // borders and padding channels stay zero
        }
        ops_.resize(m.ops.size());
        int fp = m.fp_in;
        for (std::size_t i = 0; i < m.ops.size(); ++i) {
            op& o = ops_[i];
            o.in = i, o.out = i + 1;
            if (const auto* c = std::get_if<quant::qconv>(&m.ops[i])) {
                pack(o, *c, fp, i);
                fp = c->fp_out;
            } else {
                const auto& p = std::get<quant::qmax_pool>(m.ops[i]);
                o.pool = true, o.k = p.k, o.stride = p.stride;
            }
        }
        fp_out_ = fp;
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
        for (std::size_t i = 0; i < ops_.size(); ++i) {
            op& o = ops_[i];
            if (o.pool) {
                map& a = maps_[o.in];
                map& b = maps_[o.out];
                kernels::int8::max_pool(a.origin(), a.c4, a.row(), o.k, o.stride, b.h, b.w, b.origin(), b.row(),
                                        scratch_.data());
            } else {
                o.run(o.args);
            }
            after_step(i + 1);
        }
        read_output(out);
        after_step(ops_.size() + 1);
    }
    std::size_t op_count() const { return ops_.size(); }
    // n images, one after another.
    void run(const float* x, float* out, std::size_t n) {
        const std::size_t in = maps_[0].c * maps_[0].h * maps_[0].w;
        for (std::size_t i = 0; i < n; ++i) run(x + i * in, out + i * outputs());
    }
    // The int8 output of the last run, [C][H][W] (before dequantisation).
    const std::vector<std::int8_t>& last_output() const { return out_q_; }

private:
    template <class L>
    void pack_with(op& o, const quant::qconv& c, int fp, std::size_t index) {
        map& in = maps_[o.in];
        map& out = maps_[o.out];
        const auto win = quant::window_of(c, in.c, in.h, in.w, "int8_target", index);
        const std::size_t kh = win.kh, kw = win.kw, cin = win.cin, c4 = in.c4;
        const std::size_t cout_pad = (c.cout + L::lanes - 1) / L::lanes * L::lanes;
        const auto [cut, sb] = quant::checked_shifts(c, fp, "int8_target", index);
        // Every partial sum of biased bytes must be an exact int32.
        const double taps = static_cast<double>(kh * kw * c4);
        if (taps * 255.0 * 128.0 >= 2147483647.0)
            fail("int8_target", "op " + std::to_string(index) + ": " + std::to_string(kh * kw * cin) +
                                    " taps per output overflow int32 sums");
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
            // (sum q w + b 2^sb) / 2^cut rounded half up = (sum q w + offset) >> cut, where
            // for sb < 0 the bias's share is floored first (exact: the sum is an integer).
            const std::int64_t b = c.qbias[oc];
            std::int64_t k = 0;
            if (sb >= 0)
                k = b * (std::int64_t{1} << sb) + (cut > 0 ? std::int64_t{1} << (cut - 1) : 0);
            else
                k = (b + (std::int64_t{1} << (cut - sb - 1))) >> -sb;
            k -= 128 * sum_w;
            if (k < std::numeric_limits<std::int32_t>::min() / 2 || k > std::numeric_limits<std::int32_t>::max() / 2)
                fail("int8_target", "op " + std::to_string(index) + ": the bias offset does not fit int32");
            o.offset[oc] = static_cast<std::int32_t>(k);
        }
        auto& g = o.args;
        g.in = in.bytes.data();  // the window of output (0, 0) starts in the corner of the border
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
        g.cut = cut, g.relu = c.relu;
        o.run = &kernels::int8::conv<L>;
    }
    void pack(op& o, const quant::qconv& c, int fp, std::size_t index) {
        if (c.cout <= Lanes::narrow::lanes)
            pack_with<typename Lanes::narrow>(o, c, fp, index);
        else
            pack_with<typename Lanes::wide>(o, c, fp, index);
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
    std::vector<op> ops_;
    std::vector<std::int8_t> out_q_;
    aligned_buffer<std::uint8_t> scratch_;  // one row of a max pool's input
};

using int8_target = basic_int8_target<>;

}  // namespace sgp::target
