#pragma once
// Depthwise 2-d convolution (PyTorch's Conv2d with groups = channels): each channel convolved
// with its own K x K kernel, square, stride S, zero padding P, optional bias. Weight
// [C][1][K][K] as in PyTorch. Its channels are its input's: for pruning it follows them,
// with its own per-channel weights (removed with the channel), like a batch norm.
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/kernels/depthwise_conv.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

template <std::size_t K, std::size_t S = 1, std::size_t P = K / 2, bool Bias = false>
struct depthwise_conv2d {
    static_assert(K > 0, "depthwise_conv2d<K>: the kernel size must be at least 1");
    static_assert(S > 0, "depthwise_conv2d<K, S>: the stride must be at least 1");

    template <shape In>
    class bind {
        static_assert(!In.flat,
                      "depthwise_conv2d: its input is a flat feature vector (after flatten); convolutions "
                      "need a C x H x W map");
        static_assert(In.h + 2 * P >= K && In.w + 2 * P >= K,
                      "depthwise_conv2d: the kernel is larger than the (padded) feature map it slides over");

    public:
        static constexpr std::string_view kind = "depthwise_conv2d";
        static constexpr shape in_shape = In;
        static constexpr shape out_shape{In.c, (In.h + 2 * P - K) / S + 1, (In.w + 2 * P - K) / S + 1, false};
        static constexpr std::size_t kernel = K, stride = S, padding = P;
        static constexpr bool has_bias = Bias;
        static constexpr std::size_t parameter_count = In.c * K * K + (Bias ? In.c : 0);
        static constexpr std::size_t macs = In.c * out_shape.plane() * K * K;
        static constexpr channel_role role = channel_role::follows;
        static constexpr cost cost_at(std::size_t in, std::size_t) {
            return {in * K * K + (Bias ? in : 0), in * out_shape.plane() * K * K};
        }
        static constexpr std::size_t workspace(std::size_t) { return 0; }

        bind() : weight_(In.c * K * K), dweight_(weight_.size()), bias_(Bias ? In.c : 0), dbias_(bias_.size()) {}

        // Kaiming normal with fan-in K*K (ReLU gain), as conv2d with one input channel per group.
        template <class R>
        void init(R& r) {
            const float std = std::sqrt(2.f / static_cast<float>(K * K));
            for (auto& w : weight_) w = r.normal() * std;
            bias_.fill(0.f);
        }

        void set_input_channels(std::size_t c) { c_ = c; }
        std::size_t input_channels() const { return c_; }
        std::size_t out_channels() const { return c_; }
        void reserve(std::size_t) {}

        std::string declaration() const {
            return "sgp::layers::depthwise_conv2d<" + std::to_string(K) + ", " + std::to_string(S) + ", " +
                   std::to_string(P) + ", " + (Bias ? "true" : "false") + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.depthwise_conv(id, c_, K, S, P, out_shape.h, out_shape.w, weight_.data(), Bias ? bias_.data() : nullptr);
        }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            forward_with(cx, x, y, n, kernels::conv_epilogue{});
        }
        // The forward pass with `e` applied to each output as it is written (a chain fuses a
        // following batch norm and ReLU / ReLU6 in evaluation this way).
        void forward_with(run_context& cx, const float* x, float* y, std::size_t n, kernels::conv_epilogue e) {
            if constexpr (Bias) e.bias = bias_.data();
            const auto g = geometry(n);
            kernels::depthwise_forward(g, x, weight_.data(), y, e, scratch(g, cx), cx.pool);
        }
        void backward(run_context& cx, const float* x, const float*, const float* dy, float* dx, std::size_t n) {
            const auto g = geometry(n);
            kernels::depthwise_backward_weights(g, x, dy, dweight_.data(), scratch(g, cx), cx.pool);
            if constexpr (Bias) {
                const std::size_t len = n * out_shape.plane();
                for (std::size_t c = 0; c < c_; ++c) {
                    double s = 0;
                    for (std::size_t i = 0; i < len; ++i) s += dy[c * len + i];
                    dbias_[c] = static_cast<float>(s);
                }
            }
            if (dx) kernels::depthwise_backward_data(g, dy, weight_.data(), dx, scratch(g, cx), cx.pool);
        }

        template <class F>
        void for_each_tensor(F&& f) {
            f(tensor_ref{"weight", weight_.data(), dweight_.data(), {c_, 1, K, K}, tensor_role::parameter, nullptr});
            if constexpr (Bias)
                f(tensor_ref{"bias", bias_.data(), dbias_.data(), {c_}, tensor_role::parameter, nullptr});
        }

        // Pruning surgery: keep channels `keep` (ascending), compacted to the front.
        void keep_channels(std::span<const std::size_t> keep) {
            sgp::detail::compact_rows(weight_.data(), K * K, keep);
            if constexpr (Bias) sgp::detail::compact_rows(bias_.data(), 1, keep);
            c_ = keep.size();
        }

        float* weight() { return weight_.data(); }
        float* bias() { return bias_.data(); }

    private:
        kernels::depthwise_geometry geometry(std::size_t n) const {
            return kernels::make_depthwise_geometry(n, c_, In.h, In.w, K, S, P);
        }
        // One padded plane per thread; grows once if a larger pool than before runs the layer.
        float* scratch(const kernels::depthwise_geometry& g, const run_context& cx) {
            const std::size_t need = kernels::depthwise_scratch_floats(g, cx.pool ? cx.pool->size() : 1);
            if (scratch_.size() < need) scratch_.resize(need);
            return scratch_.data();
        }
        aligned_buffer<float> weight_, dweight_, bias_, dbias_;
        transient_buffer<float> scratch_;
        std::size_t c_ = In.c;
    };
};

// The MobileNet shape: 3x3, padding 1.
template <std::size_t S = 1>
using depthwise3x3 = depthwise_conv2d<3, S, 1>;

}  // namespace sgp::layers
