#pragma once
// ReLU6: min(max(x, 0), 6), MobileNets' activation (and the DPU's); its gradient passes where
// 0 < y < 6, as PyTorch's hardtanh backward.
#include <string>
#include <string_view>

#include "sgp/kernels/relu.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

struct relu6 {
    template <shape In>
    class bind : public stateless_layer {
    public:
        static constexpr std::string_view kind = "relu6";
        static constexpr shape in_shape = In, out_shape = In;
        static constexpr channel_role role = channel_role::passes;
        static constexpr fusion fuses_as = fusion::relu6;
        static constexpr bool rectifies = true;
        std::string declaration() const { return "sgp::layers::relu6"; }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.relu6(id);
        }

        void set_input_channels(std::size_t c) { c_ = c; }
        std::size_t input_channels() const { return c_; }
        std::size_t out_channels() const { return c_; }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            const std::size_t len = c_ * n * In.plane();
            parallel_for(cx.pool, len, 4096,
                         [&](std::size_t b, std::size_t e) { kernels::relu6(x + b, y + b, e - b); });
        }
        void backward(run_context& cx, const float*, const float* y, const float* dy, float* dx, std::size_t n) {
            if (!dx) return;
            const std::size_t len = c_ * n * In.plane();
            parallel_for(cx.pool, len, 4096,
                         [&](std::size_t b, std::size_t e) { kernels::relu6_backward(y + b, dy + b, dx + b, e - b); });
        }

    private:
        std::size_t c_ = In.c;
    };
};

}  // namespace sgp::layers
