#pragma once
// Batch normalisation over channels (BatchNorm2d, or BatchNorm1d after flatten): learnable
// gamma and beta, running mean and variance updated with `Momentum` in training mode and
// used in evaluation mode, exactly as PyTorch does (biased variance to normalise,
// unbiased variance in the running estimate).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "sgp/core/literal.hpp"
#include "sgp/kernels/batch_norm.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

template <float GammaInit = 1.f, float Eps = 1e-5f, float Momentum = 0.1f>
struct batch_norm_t {
    template <shape In>
    class bind {
        static_assert(In.h > 0 && In.w > 0 && In.c > 0, "batch_norm: the input has no channels");

    public:
        static constexpr std::string_view kind = "batch_norm";
        static constexpr shape in_shape = In;
        static constexpr shape out_shape = In;
        static constexpr std::size_t parameter_count = 2 * In.c;
        static constexpr std::size_t macs = 0;
        static constexpr float gamma_init = GammaInit, eps = Eps, momentum = Momentum;
        static constexpr std::size_t workspace(std::size_t) { return 0; }
        static constexpr channel_role role = channel_role::follows;
        static constexpr fusion fuses_as = fusion::affine;  // a convolution before it applies it as it writes
        static constexpr bool channel_scale = true;         // gamma scores channels and takes the L1 gradient
        static constexpr cost cost_at(std::size_t in, std::size_t) { return {2 * in, 0}; }
        std::string declaration() const {
            return "sgp::layers::batch_norm_t<" + float_literal(GammaInit) + ", " + float_literal(Eps) + ", " +
                   float_literal(Momentum) + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.batch_norm(id, gamma_.data(), beta_.data(), rmean_.data(), rvar_.data(), Eps);
        }
        void reserve(std::size_t) {}

        bind()
            : gamma_(In.c),
              dgamma_(In.c),
              beta_(In.c),
              dbeta_(In.c),
              rmean_(In.c),
              rvar_(In.c),
              mean_(In.c),
              invstd_(In.c),
              scale_(In.c),
              shift_(In.c) {
            rvar_.fill(1.f);
        }

        template <class R>
        void init(R&) {
            gamma_.fill(GammaInit);
            beta_.fill(0.f);
            rmean_.fill(0.f);
            rvar_.fill(1.f);
            batches_ = 0;
        }

        void set_input_channels(std::size_t c) { c_ = c; }
        std::size_t input_channels() const { return c_; }
        std::size_t out_channels() const { return c_; }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            const std::size_t len = n * In.plane();
            if (cx.training) {
                if (len < 2)
                    fail("batch_norm", "training needs more than one value per channel (batch size 1 on a 1x1 map)");
                ++batches_;
                if (cx.statistics_only) ++averaged_;
            }
            parallel_for(cx.pool, c_, 1, [&](std::size_t c0, std::size_t c1) {
                for (std::size_t c = c0; c < c1; ++c) {
                    const float* xc = x + c * len;
                    float mean = rmean_[c], var = rvar_[c];
                    if (cx.training) {
                        const auto s = kernels::bn_channel_stats(xc, len);
                        mean = s.mean;
                        var = s.var;
                        // Overflowed statistics would normalise the channel to a constant and
                        // hide the divergence from the loss.
                        if (!std::isfinite(mean) || !std::isfinite(var))
                            fail("batch_norm (layer " + std::to_string(cx.layer_index) + ")",
                                 "channel " + std::to_string(c) + " has non-finite batch statistics (mean " +
                                     std::to_string(mean) + ", variance " + std::to_string(var) + ")");
                        // Recalibrating: the cumulative average of the batches since the reset
                        // (PyTorch's momentum=None); otherwise the exponential average.
                        const float m = cx.statistics_only ? 1.f / static_cast<float>(averaged_) : Momentum;
                        rmean_[c] = (1 - m) * rmean_[c] + m * mean;
                        rvar_[c] = (1 - m) * rvar_[c] + m * var * static_cast<float>(len) / static_cast<float>(len - 1);
                    }
                    const auto [inv, a, b] = affine(c, mean, var);
                    mean_[c] = mean;
                    invstd_[c] = inv;
                    kernels::scale_shift(xc, y + c * len, len, a, b);
                }
            });
        }

        // The evaluation-mode forward as y = x * scale[c] + shift[c], computed as forward computes
        // it: a convolution before this layer applies it to its output (see sequential::forward).
        // The arrays live in the layer and are valid until the next call.
        std::pair<const float*, const float*> eval_scale_shift() {
            for (std::size_t c = 0; c < c_; ++c) {
                const auto [inv, a, b] = affine(c, rmean_[c], rvar_[c]);
                (void)inv;
                scale_[c] = a;
                shift_[c] = b;
            }
            return {scale_.data(), shift_.data()};
        }

        // Valid after a training-mode forward on the same x (uses its batch statistics).
        void backward(run_context& cx, const float* x, const float*, const float* dy, float* dx, std::size_t n) {
            const std::size_t len = n * In.plane();
            parallel_for(cx.pool, c_, 1, [&](std::size_t c0, std::size_t c1) {
                for (std::size_t c = c0; c < c1; ++c)
                    kernels::bn_channel_backward(x + c * len, dy + c * len, dx ? dx + c * len : nullptr, len, mean_[c],
                                                 invstd_[c], gamma_[c], dgamma_[c], dbeta_[c]);
            });
        }

        template <class F>
        void for_each_tensor(F&& f) {
            f(tensor_ref{"weight", gamma_.data(), dgamma_.data(), {c_}, tensor_role::parameter, nullptr});
            f(tensor_ref{"bias", beta_.data(), dbeta_.data(), {c_}, tensor_role::parameter, nullptr});
            f(tensor_ref{"running_mean", rmean_.data(), nullptr, {c_}, tensor_role::buffer, nullptr});
            f(tensor_ref{"running_var", rvar_.data(), nullptr, {c_}, tensor_role::buffer, nullptr});
            f(tensor_ref{"num_batches_tracked", nullptr, nullptr, {}, tensor_role::buffer, &batches_});
        }

        // Forgets the running statistics: the next statistics_only forwards average afresh
        // (train/recalibrate.hpp).
        void reset_running_statistics() {
            rmean_.fill(0.f);
            rvar_.fill(1.f);
            averaged_ = 0;
        }

        // Pruning surgery: keep channels `keep` (ascending), compacted to the front.
        void keep_channels(std::span<const std::size_t> keep) {
            for (auto* b : {&gamma_, &beta_, &rmean_, &rvar_}) sgp::detail::compact_rows(b->data(), 1, keep);
            c_ = keep.size();
        }

        float* gamma() { return gamma_.data(); }
        float* gamma_grad() { return dgamma_.data(); }
        float* beta() { return beta_.data(); }
        const float* running_mean() const { return rmean_.data(); }
        const float* running_var() const { return rvar_.data(); }

    private:
        struct affine_t {
            float invstd, scale, shift;
        };
        // Channel c normalised with (mean, var): one definition for the layer and its fused form.
        affine_t affine(std::size_t c, float mean, float var) const {
            const float inv = 1.f / std::sqrt(var + Eps);
            const float a = gamma_[c] * inv;
            return {inv, a, beta_[c] - mean * a};
        }
        aligned_buffer<float> gamma_, dgamma_, beta_, dbeta_, rmean_, rvar_, mean_, invstd_, scale_, shift_;
        std::size_t c_ = In.c;
        std::int64_t batches_ = 0;
        std::size_t averaged_ = 0;  // batches averaged since reset_running_statistics
    };
};

using batch_norm = batch_norm_t<>;

}  // namespace sgp::layers
