#pragma once
// Inverted dropout: in training, each value is zeroed with probability P and the rest are
// scaled by 1/(1-P); in evaluation it is the identity. The mask is a pure function of
// (seed, step, layer, element), so a resumed run draws the same masks.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "sgp/core/literal.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

template <float P = 0.5f>
struct dropout {
    static_assert(P >= 0.f && P < 1.f, "dropout<P>: P must be in [0, 1)");

    template <shape In>
    class bind : public stateless_layer {
    public:
        static constexpr std::string_view kind = "dropout";
        static constexpr shape in_shape = In, out_shape = In;
        static constexpr float probability = P;
        static constexpr channel_role role = channel_role::passes;
        std::string declaration() const { return "sgp::layers::dropout<" + float_literal(P) + ">"; }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.identity(id);  // the identity in evaluation
        }

        void set_input_channels(std::size_t c) { c_ = c; }
        std::size_t input_channels() const { return c_; }
        std::size_t out_channels() const { return c_; }

        // Whether element i is kept at this (seed, step, layer).
        static bool keep(const run_context& cx, std::size_t i) {
            const std::uint64_t h = mix64(mix64(cx.seed, cx.step), mix64(cx.layer_index, i));
            return static_cast<float>(h >> 40) * 0x1.0p-24f >= P;
        }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) { apply(cx, x, y, n); }
        // The same mask scales the gradient.
        void backward(run_context& cx, const float*, const float*, const float* dy, float* dx, std::size_t n) {
            if (dx) apply(cx, dy, dx, n);
        }

    private:
        void apply(const run_context& cx, const float* in, float* out, std::size_t n) const {
            const std::size_t len = c_ * n * In.plane();
            if (!cx.training || cx.statistics_only || P == 0.f) {
                std::copy(in, in + len, out);
                return;
            }
            constexpr float scale = 1.f / (1.f - P);
            parallel_for(cx.pool, len, 4096, [&](std::size_t b, std::size_t e) {
                for (std::size_t i = b; i < e; ++i) out[i] = keep(cx, i) ? in[i] * scale : 0.f;
            });
        }
        std::size_t c_ = In.c;
    };
};

}  // namespace sgp::layers
