#pragma once
// Fully connected layer on a flat input: y = W x + b, W [Out][In] as in PyTorch.
#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/kernels/gemm.hpp"
#include "sgp/kernels/gemm_bf16.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

template <std::size_t Out, bool Bias = true>
struct linear {
    static_assert(Out > 0, "linear<Out>: a linear layer needs at least one output");

    template <shape In>
    class bind {
        static_assert(In.flat, "linear: its input is a C x H x W map; insert `flatten` before a linear layer");

    public:
        static constexpr std::string_view kind = "linear";
        static constexpr shape in_shape = In;
        static constexpr shape out_shape{Out, 1, 1, true};
        static constexpr bool has_bias = Bias;
        static constexpr std::size_t parameter_count = Out * In.c + (Bias ? Out : 0);
        static constexpr std::size_t macs = Out * In.c;
        static constexpr std::size_t workspace(std::size_t) { return 0; }
        static constexpr channel_role role = channel_role::produces;
        static constexpr cost cost_at(std::size_t in, std::size_t out) {
            return {out * in + (Bias ? out : 0), out * in};
        }
        std::string declaration() const {
            return "sgp::layers::linear<" + std::to_string(out_) + ", " + (Bias ? "true" : "false") + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.linear(id, in_, out_, weight(), Bias ? bias_.data() : nullptr);
        }
        void reserve(std::size_t) {}

        bind()
            : weight_(Out * In.c), dweight_(weight_.size()), bias_(Bias ? Out : 0), dbias_(bias_.size()), origin_(Out) {
            for (std::size_t i = 0; i < Out; ++i) origin_[i] = i;
        }

        // PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, with the active
        // number of inputs (as conv2d).
        template <class R>
        void init(R& r) {
            const float b = 1.f / std::sqrt(static_cast<float>(in_));
            for (auto& w : weight_) w = r.uniform(-b, b);
            for (auto& w : bias_) w = r.uniform(-b, b);
            packed_.invalidate();
        }

        void set_input_channels(std::size_t c) {
            in_ = c;
            packed_.invalidate();
        }
        std::size_t input_channels() const { return in_; }
        std::size_t out_channels() const { return out_; }
        void set_out_channels(std::size_t c) { out_ = c; }

        // x is [In][N], y is [Out][N].
        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            if (cx.precision == precision::bf16)
                kernels::gemm_bf16(false, false, out_, n, in_, weight_.data(), in_, x, n, y, n, false, cx.pool);
            else  // in evaluation the weights are packed once and reused (see for_each_tensor)
                kernels::gemm(false, false, out_, n, in_, weight_.data(), in_, x, n, y, n, false, cx.pool,
                              cx.training ? nullptr : &packed_);
            if constexpr (Bias)
                for (std::size_t o = 0; o < out_; ++o)
                    for (std::size_t i = 0; i < n; ++i) y[o * n + i] += bias_[o];
        }
        void backward(run_context& cx, const float* x, const float*, const float* dy, float* dx, std::size_t n) {
            packed_.invalidate();  // an optimizer step follows
            kernels::gemm_at(cx.precision, false, true, out_, in_, n, dy, n, x, n, dweight_.data(), in_, false,
                             cx.pool);
            if constexpr (Bias)
                for (std::size_t o = 0; o < out_; ++o) {
                    double s = 0;
                    for (std::size_t i = 0; i < n; ++i) s += dy[o * n + i];
                    dbias_[o] = static_cast<float>(s);
                }
            if (dx)
                kernels::gemm_at(cx.precision, true, false, in_, n, out_, weight_.data(), in_, dy, n, dx, n, false,
                                 cx.pool);
        }

        // Mutable access drops the packed weights (as for conv2d).
        template <class F>
        void for_each_tensor(F&& f) {
            packed_.invalidate();
            f(tensor_ref{"weight", weight_.data(), dweight_.data(), {out_, in_}, tensor_role::parameter, nullptr});
            if constexpr (Bias)
                f(tensor_ref{"bias", bias_.data(), dbias_.data(), {out_}, tensor_role::parameter, nullptr});
        }

        // Which of the declared channels each active output channel is (identity until pruned).
        std::span<const std::size_t> channel_origin() const { return {origin_.data(), out_}; }

        float* weight() {
            packed_.invalidate();
            return weight_.data();
        }
        float* bias() { return bias_.data(); }

        // Pruning surgery, as for conv2d. After flatten, input channel c owns the `group`
        // (= H*W) consecutive features c*group .. c*group + group-1.
        void keep_outputs(std::span<const std::size_t> keep) {
            packed_.invalidate();
            sgp::detail::compact_rows(weight_.data(), in_, keep);
            if constexpr (Bias) sgp::detail::compact_rows(bias_.data(), 1, keep);
            for (std::size_t i = 0; i < keep.size(); ++i) origin_[i] = origin_[keep[i]];
            out_ = keep.size();
        }
        void keep_inputs(std::span<const std::size_t> keep, std::size_t group = 1) {
            if (in_ % group) fail("linear", "input width is not a multiple of the channel group");
            packed_.invalidate();
            sgp::detail::compact_columns(weight_.data(), out_, in_ / group, group, keep);
            in_ = keep.size() * group;
        }

    private:
        aligned_buffer<float> weight_, dweight_, bias_, dbias_;
        std::vector<std::size_t> origin_;
        kernels::packed_weights packed_;
        std::size_t in_ = In.c, out_ = Out;
    };
};

}  // namespace sgp::layers
