#pragma once
// C x H x W -> a flat vector of C*H*W features, ordered as PyTorch's flatten (c, y, x).
// In sgp's channel-major layout this turns [C][N][H*W] into [C*H*W][N].
#include <string>
#include <string_view>

#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

struct flatten {
    template <shape In>
    class bind : public stateless_layer {
        static_assert(!In.flat, "flatten: the input is already flat");

    public:
        static constexpr std::string_view kind = "flatten";
        static constexpr shape in_shape = In;
        static constexpr shape out_shape{In.size(), 1, 1, true};
        static constexpr channel_role role = channel_role::flattens;
        std::string declaration() const { return "sgp::layers::flatten"; }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.flatten(id);
        }

        void set_input_channels(std::size_t c) { c_ = c; }
        std::size_t input_channels() const { return c_; }
        std::size_t out_channels() const { return c_ * In.plane(); }

        void forward(run_context&, const float* x, float* y, std::size_t n) {
            constexpr std::size_t hw = In.plane();
            for (std::size_t c = 0; c < c_; ++c)
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t p = 0; p < hw; ++p) y[(c * hw + p) * n + i] = x[(c * n + i) * hw + p];
        }
        void backward(run_context&, const float*, const float*, const float* dy, float* dx, std::size_t n) {
            if (!dx) return;
            constexpr std::size_t hw = In.plane();
            for (std::size_t c = 0; c < c_; ++c)
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t p = 0; p < hw; ++p) dx[(c * n + i) * hw + p] = dy[(c * hw + p) * n + i];
        }

    private:
        std::size_t c_ = In.c;
    };
};

}  // namespace sgp::layers
