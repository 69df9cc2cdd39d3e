#pragma once
// subsample_pad<Out, S>: x[:, :, ::S, ::S] with zero channels added equally before and after
// to make Out channels: the parameter-free shortcut of He et al.'s CIFAR ResNets ("option A")
// where a stage halves the map and doubles the channels. For pruning it is a barrier: its
// output channels are a fixed shuffle of its input's, so neither side is pruned.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

template <std::size_t Out, std::size_t S = 2>
struct subsample_pad {
    static_assert(S > 0, "subsample_pad<Out, S>: the stride must be at least 1");

    template <shape In>
    class bind : public stateless_layer {
        static_assert(!In.flat, "subsample_pad: its input is a flat feature vector; it needs a C x H x W map");
        static_assert(Out >= In.c && (Out - In.c) % 2 == 0,
                      "subsample_pad<Out>: Out must be the input's channels plus an even number of zero channels");
        static constexpr std::size_t pad = (Out - In.c) / 2;

    public:
        static constexpr std::string_view kind = "subsample_pad";
        static constexpr shape in_shape = In;
        static constexpr shape out_shape{Out, (In.h + S - 1) / S, (In.w + S - 1) / S, false};
        static constexpr channel_role role = channel_role::barrier;

        void set_input_channels(std::size_t c) {
            if (c != In.c)
                fail("subsample_pad", "its input keeps its " + std::to_string(In.c) +
                                          " channels (it is a barrier to "
                                          "pruning), got " +
                                          std::to_string(c));
        }
        std::size_t input_channels() const { return In.c; }
        std::size_t out_channels() const { return Out; }
        std::string declaration() const {
            return "sgp::layers::subsample_pad<" + std::to_string(Out) + ", " + std::to_string(S) + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.subsample_pad(id, pad, Out - In.c - pad, S, out_shape.h, out_shape.w);
        }

        void forward(run_context&, const float* x, float* y, std::size_t n) {
            constexpr std::size_t oh = out_shape.h, ow = out_shape.w, op = oh * ow;
            std::fill(y, y + pad * n * op, 0.f);
            std::fill(y + (pad + In.c) * n * op, y + Out * n * op, 0.f);
            for (std::size_t c = 0; c < In.c; ++c)
                for (std::size_t i = 0; i < n; ++i) {
                    const float* src = x + (c * n + i) * In.plane();
                    float* dst = y + ((c + pad) * n + i) * op;
                    for (std::size_t oy = 0; oy < oh; ++oy)
                        for (std::size_t ox = 0; ox < ow; ++ox) dst[oy * ow + ox] = src[oy * S * In.w + ox * S];
                }
        }
        void backward(run_context&, const float*, const float*, const float* dy, float* dx, std::size_t n) {
            if (!dx) return;
            constexpr std::size_t oh = out_shape.h, ow = out_shape.w, op = oh * ow;
            std::fill(dx, dx + In.c * n * In.plane(), 0.f);
            for (std::size_t c = 0; c < In.c; ++c)
                for (std::size_t i = 0; i < n; ++i) {
                    const float* src = dy + ((c + pad) * n + i) * op;
                    float* dst = dx + (c * n + i) * In.plane();
                    for (std::size_t oy = 0; oy < oh; ++oy)
                        for (std::size_t ox = 0; ox < ow; ++ox) dst[oy * S * In.w + ox * S] = src[oy * ow + ox];
                }
        }
    };
};

}  // namespace sgp::layers
