#pragma once
// 2-d convolution, square kernel K, stride S, zero padding P, optional bias. Weight
// [O][I][K][K] as in PyTorch. Forward, backward-data and backward-weights are each one GEMM
// over the whole batch (kernels/conv_columns.hpp) or, where it was measured faster, a direct
// kernel (kernels/direct_conv.hpp, few_pixel_conv.hpp, direct_weight_grad.hpp).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/rng.hpp"
#include "sgp/kernels/conv_columns.hpp"
#include "sgp/kernels/conv_columns_bf16.hpp"
#include "sgp/kernels/direct_conv.hpp"
#include "sgp/kernels/direct_weight_grad.hpp"
#include "sgp/kernels/few_pixel_conv.hpp"
#include "sgp/kernels/gemm.hpp"
#include "sgp/kernels/gemm_bf16.hpp"
#include "sgp/kernels/im2col.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp::layers {

enum class conv_method { automatic, gemm, direct, few_pixel };

// Whether the direct convolution beats the GEMM for a stride-1 convolution of `cin` -> `cout`
// channels whose output plane fills `useful` of the padded plane it is computed on (measured
// per 3x3 shape, batch 1 and 64, by bench_kernels --methods; docs/performance.md): always for
// narrow layers, and for wide ones on large maps, where little is computed and dropped. A 1x1
// convolution keeps the GEMM, which reads its input as the column matrix as it is.
constexpr bool direct_pays(std::size_t k, std::size_t cin, std::size_t cout, double useful) {
    return k > 1 && (cout <= 32 || (cin >= 8 && useful >= 0.75));
}

template <std::size_t Out, std::size_t K, std::size_t S = 1, std::size_t P = K / 2, bool Bias = false>
struct conv2d {
    static_assert(Out > 0, "conv2d<Out, K>: a convolution needs at least one output channel");
    static_assert(K > 0, "conv2d<Out, K>: the kernel size must be at least 1");
    static_assert(S > 0, "conv2d<Out, K, S>: the stride must be at least 1");

    template <shape In>
    class bind {
        static_assert(!In.flat,
                      "conv2d: its input is a flat feature vector (after flatten); convolutions need a C x H x W map");
        static_assert(In.h + 2 * P >= K && In.w + 2 * P >= K,
                      "conv2d: the kernel is larger than the (padded) feature map it slides over");

    public:
        static constexpr std::string_view kind = "conv2d";
        static constexpr shape in_shape = In;
        static constexpr shape out_shape{Out, (In.h + 2 * P - K) / S + 1, (In.w + 2 * P - K) / S + 1, false};
        static constexpr std::size_t kernel = K, stride = S, padding = P;
        static constexpr bool has_bias = Bias;
        static constexpr std::size_t parameter_count = Out * In.c * K * K + (Bias ? Out : 0);
        static constexpr std::size_t macs = Out * out_shape.plane() * In.c * K * K;
        static constexpr channel_role role = channel_role::produces;
        // Weights scale with both widths, the bias with the output width.
        static constexpr cost cost_at(std::size_t in, std::size_t out) {
            return {out * in * K * K + (Bias ? out : 0), out * out_shape.plane() * in * K * K};
        }

        bind()
            : weight_(Out * In.c * K * K),
              dweight_(weight_.size()),
              flipped_(same_padded ? std::max(weight_.size(), kernels::direct_weights_size(In.c, Out, K)) : 0),
              bias_(Bias ? Out : 0),
              dbias_(bias_.size()),
              origin_(Out) {
            for (std::size_t i = 0; i < Out; ++i) origin_[i] = i;
        }

        // Kaiming normal with fan-in (ReLU gain), zero bias: preserves the forward variance, so
        // logits start near unit scale even behind a wide layer (fan-out would give a 1x1
        // 4096 -> 10 classifier weights of std 0.45 and initial losses near 10). The fan-in is
        // the active one: a pruned architecture re-initialised is initialised as if declared so.
        template <class R>
        void init(R& r) {
            const float std = std::sqrt(2.f / static_cast<float>(cin_ * K * K));
            for (auto& w : weight_) w = r.normal() * std;
            bias_.fill(0.f);
            packed_.invalidate();
        }

        void set_input_channels(std::size_t c) {
            cin_ = c;
            packed_.invalidate();
        }
        std::size_t input_channels() const { return cin_; }
        std::size_t out_channels() const { return cout_; }
        void set_out_channels(std::size_t c) { cout_ = c; }

        // Scratch floats for up to n images: the padded input and the outputs of the direct
        // convolution (stride 1) and of the direct data gradient (dY padded, dX), a formed column
        // matrix where the forward pass takes gemm's few-column order (at most 16 columns), and the
        // column gradient of a convolution that is not stride-1 same-padded.
        static constexpr std::size_t workspace(std::size_t n) {
            std::size_t w = 0;
            if constexpr (S == 1) {
                const kernels::direct_geometry d{n, In.c, In.h, In.w, K, P};
                w = std::max(d.input_floats(), d.output_floats(Out));
            }
            if constexpr (same_padded) {
                const kernels::direct_geometry d{n, Out, out_shape.h, out_shape.w, K, P};
                w = std::max({w, d.input_floats(), d.output_floats(In.c)});
            }
            if constexpr (K == 1 && S == 1 && P == 0) return w;
            const std::size_t rows = In.c * K * K, cols = n * out_shape.plane();
            if constexpr (S == 1 && 2 * P + 1 == K) return std::max(w, rows * std::min<std::size_t>(cols, 16));
            return std::max(w, rows * cols);
        }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            forward_with(cx, x, y, n, kernels::conv_epilogue{});
        }

        // The forward pass with `e` applied to each output as it is written (sequential fuses a
        // following batch norm and ReLU in evaluation this way).
        void forward_with(run_context& cx, const float* x, float* y, std::size_t n, kernels::conv_epilogue e) {
            if constexpr (Bias) e.bias = bias_.data();
            const auto g = geometry(n);
            // The direct kernels read packed weights in training too: packed again every
            // training pass (a small cost next to a batch's convolution), so that weights written
            // between passes are always seen; in evaluation, packed once.
            if (cx.training) packed_.invalidate();
            if (cx.precision == precision::bf16) {
                // Mixed precision: one bf16 GEMM over the columns, whatever the shape.
                if (g.identity())
                    kernels::gemm_bf16(false, false, cout_, g.cols(), g.rows(), weight_.data(), g.rows(), x, g.cols(),
                                       y, g.cols(), false, cx.pool);
                else
                    kernels::gemm_bf16_source(false, cout_, g.cols(), g.rows(), weight_.data(), g.rows(),
                                              kernels::conv_columns{x, g}, y, g.cols(), false, cx.pool);
                apply_epilogue(cx, e, y, g.cols());
                return;
            }
            if (uses_few_pixel(n)) {
                const float* wpk = packed_.get(
                    few_pixel_layout, cout_, g.rows(), kernels::few_pixel_weights_size(cout_, cin_, K),
                    [&](float* out) { kernels::pack_few_pixel_weights(weight_.data(), cout_, cin_, K, out); });
                kernels::few_pixel_conv<K>(direct_geometry(n), x, wpk, cout_, cx.scratch->data(), y, e, cx.pool);
                return;
            }
            if (uses_direct()) {
                const float* wpk = packed_.get(
                    direct_layout, cout_, g.rows(), kernels::direct_weights_size(cout_, cin_, K),
                    [&](float* out) { kernels::pack_direct_weights(weight_.data(), cout_, cin_, K, out, cx.pool); });
                kernels::direct_conv<K>(direct_geometry(n), x, wpk, cout_, cx.scratch->data(), cx.scratch2->data(), y,
                                        e, cx.pool);
                return;
            }
            // In evaluation the weights are packed once and reused (see for_each_tensor).
            kernels::packed_weights* pw = cx.training ? nullptr : &packed_;
            if (g.identity()) {
                kernels::gemm(false, false, cout_, g.cols(), g.rows(), weight_.data(), g.rows(), x, g.cols(), y,
                              g.cols(), false, cx.pool, pw);
            } else if (g.cols() > 16) {
                // The column matrix is packed straight from x (kernels/conv_columns.hpp).
                kernels::gemm_source(false, cout_, g.cols(), g.rows(), weight_.data(), g.rows(),
                                     kernels::conv_columns{x, g}, y, g.cols(), false, cx.pool, pw);
            } else {
                // Few columns: gemm() takes its transposed order, which reads a formed matrix.
                kernels::im2col(g, x, cx.scratch->data(), cx.pool);
                kernels::gemm(false, false, cout_, g.cols(), g.rows(), weight_.data(), g.rows(), cx.scratch->data(),
                              g.cols(), y, g.cols(), false, cx.pool, pw);
            }
            apply_epilogue(cx, e, y, g.cols());
        }

        std::string declaration() const {
            return "sgp::layers::conv2d<" + std::to_string(cout_) + ", " + std::to_string(K) + ", " +
                   std::to_string(S) + ", " + std::to_string(P) + ", " + (Bias ? "true" : "false") + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t id) {
            q.conv(id, cin_, cout_, K, S, P, out_shape.h, out_shape.w, weight(), Bias ? bias_.data() : nullptr);
        }
        void reserve(std::size_t) {}

        // Which algorithm forward uses: `automatic` picks per shape (see uses_direct); the
        // others force one, for benchmarks and tests. Results agree to float rounding.
        void set_method(conv_method m) { method_ = m; }
        conv_method method() const { return method_; }

        // Whether forward runs the few-pixel convolution (kernels/few_pixel_conv.hpp) for a batch of n.
        bool uses_few_pixel(std::size_t n) const {
            if constexpr (S != 1) {
                return false;
            } else {
                // Measured for 3x3 kernels; a 1x1 keeps the GEMM (see direct_pays). Where a plane
                // fills an AVX-512 vector (4x4) the small-map tiles were measured faster at batch 1
                // (1.2-1.6x; bench_kernels --methods), on 2x2 maps the few-pixel kernel (1.3-3x).
                if (n * out_shape.plane() > kernels::few_pixel_limit) return false;
                if (kernels::small_map_applies(K, P, In.h, In.w) && out_shape.plane() >= 16 &&
                    method_ == conv_method::automatic)
                    return false;
                return (method_ == conv_method::automatic && K > 1) || method_ == conv_method::few_pixel;
            }
        }
        // Whether forward runs the direct convolution (kernels/direct_conv.hpp) rather than the GEMM.
        bool uses_direct() const {
            if constexpr (S != 1) {
                return false;
            } else {
                if (method_ != conv_method::automatic) return method_ == conv_method::direct;
                return direct_pays(K, cin_, cout_, useful_plane);
            }
        }

        // Which algorithms backward uses for the weight gradient and the data gradient (fp32;
        // bf16 runs its GEMM): the direct kernels where `method` is direct or, automatically, where
        // they were measured faster (bench_kernels --methods; docs/performance.md).
        bool uses_direct_weight_grad(precision p = precision::fp32) const {
            if constexpr (!same_padded || !kernels::direct_weight_grad_applies(K, P, out_shape.h, out_shape.w)) {
                return false;
            } else {
                return backward_direct(p, kernels::direct_weight_grad_pays(cin_, cout_, out_shape.h, out_shape.w));
            }
        }
        bool uses_direct_data_grad(precision p = precision::fp32) const {
            if constexpr (!same_padded) {
                return false;
            } else {
                return backward_direct(p, direct_pays(K, cout_, cin_, useful_plane));
            }
        }

        void backward(run_context& cx, const float* x, const float*, const float* dy, float* dx, std::size_t n) {
            packed_.invalidate();  // an optimizer step follows
            const auto g = geometry(n);
            // dW[O][CKK] = dY[O][NHW] * col^T, the columns packed straight from x.
            const precision p = cx.precision;
            if (uses_direct_weight_grad(p))
                kernels::direct_weight_grad(direct_geometry(n), x, dy, cout_, cx.scratch->data(), dweight_.data(),
                                            cx.pool);
            else if (g.identity())
                kernels::gemm_at(p, false, true, cout_, g.rows(), g.cols(), dy, g.cols(), x, g.cols(), dweight_.data(),
                                 g.rows(), false, cx.pool);
            else
                kernels::gemm_source_at(p, false, cout_, g.rows(), g.cols(), dy, g.cols(),
                                        kernels::conv_columns_transposed{x, g}, dweight_.data(), g.rows(), false,
                                        cx.pool);
            if constexpr (Bias) {
                for (std::size_t o = 0; o < cout_; ++o) {
                    double s = 0;
                    for (std::size_t i = 0, L = g.cols(); i < L; ++i) s += dy[o * L + i];
                    dbias_[o] = static_cast<float>(s);
                }
            }
            if (!dx) return;
            if (g.identity()) {
                kernels::gemm_at(p, true, false, g.rows(), g.cols(), cout_, weight_.data(), g.rows(), dy, g.cols(), dx,
                                 g.cols(), false, cx.pool);
            } else if constexpr (same_padded) {
                // Stride 1, same padding: dX is the convolution of dY with the weights turned
                // around (W'[c][o][ky][kx] = W[o][c][K-1-ky][K-1-kx]), so it needs neither the
                // column gradient matrix nor col2im.
                if (uses_direct_data_grad(p)) {
                    kernels::pack_direct_weights_flipped(weight_.data(), cout_, cin_, K, flipped_.data(), cx.pool);
                    const kernels::direct_geometry gt{n, cout_, out_shape.h, out_shape.w, K, P};
                    kernels::direct_conv<K>(gt, dy, flipped_.data(), cin_, cx.scratch->data(), cx.scratch2->data(), dx,
                                            kernels::conv_epilogue{}, cx.pool);
                    return;
                }
                const std::size_t kk = K * K;
                for (std::size_t o = 0; o < cout_; ++o)
                    for (std::size_t c = 0; c < cin_; ++c)
                        for (std::size_t i = 0; i < kk; ++i)
                            flipped_[(c * cout_ + o) * kk + i] = weight_[(o * cin_ + c) * kk + kk - 1 - i];
                const kernels::conv_geometry gt{n, cout_, out_shape.h, out_shape.w, K, 1, P, In.h, In.w};
                kernels::gemm_source_at(p, false, cin_, gt.cols(), gt.rows(), flipped_.data(), gt.rows(),
                                        kernels::conv_columns{dy, gt}, dx, gt.cols(), false, cx.pool);
            } else {
                // dcol[CKK][NHW] = W^T * dY, then summed back onto the pixels it was read from.
                kernels::gemm_at(p, true, false, g.rows(), g.cols(), cout_, weight_.data(), g.rows(), dy, g.cols(),
                                 cx.scratch2->data(), g.cols(), false, cx.pool);
                kernels::col2im(g, cx.scratch2->data(), dx, cx.pool);
            }
        }

        // Mutable access: the packed copy of the weights is dropped, and rebuilt by the next
        // evaluation forward. Write weights through a tensor_ref obtained after the last forward.
        template <class F>
        void for_each_tensor(F&& f) {
            packed_.invalidate();
            f(tensor_ref{
                "weight", weight_.data(), dweight_.data(), {cout_, cin_, K, K}, tensor_role::parameter, nullptr});
            if constexpr (Bias)
                f(tensor_ref{"bias", bias_.data(), dbias_.data(), {cout_}, tensor_role::parameter, nullptr});
        }

        // Which of the declared channels each active output channel is (identity until pruned).
        std::span<const std::size_t> channel_origin() const { return {origin_.data(), cout_}; }

        float* weight() {
            packed_.invalidate();
            return weight_.data();
        }
        float* bias() { return bias_.data(); }

        // Pruning surgery: keep output channels `keep` (ascending indices into the active
        // ones), compacted to the front, and narrow the active width to match.
        void keep_outputs(std::span<const std::size_t> keep) {
            packed_.invalidate();
            const std::size_t row = cin_ * K * K;
            sgp::detail::compact_rows(weight_.data(), row, keep);
            if constexpr (Bias) sgp::detail::compact_rows(bias_.data(), 1, keep);
            for (std::size_t i = 0; i < keep.size(); ++i) origin_[i] = origin_[keep[i]];
            cout_ = keep.size();
        }
        // Keep input channels `keep`; `group` must be 1 (a convolution reads whole channels).
        void keep_inputs(std::span<const std::size_t> keep, std::size_t group = 1) {
            if (group != 1) fail("conv2d", "input channel groups apply to linear layers after flatten only");
            packed_.invalidate();
            sgp::detail::compact_columns(weight_.data(), cout_, cin_, K * K, keep);
            cin_ = keep.size();
        }

    private:
        // A backward pass takes its direct kernel in fp32 when forced, or automatically where it pays.
        bool backward_direct(precision p, bool pays) const {
            if (p != precision::fp32) return false;
            return method_ == conv_method::automatic ? pays : method_ == conv_method::direct;
        }
        // Stride 1 with the output map the input's: the data gradient is a convolution too.
        static constexpr bool same_padded = S == 1 && 2 * P + 1 == K && K > 1;
        // The output plane's share of the plane the direct kernels compute on: all of it where
        // they read the map as it is (kernels::direct_waste_free), else the padded map.
        static constexpr double useful_plane =
            kernels::direct_waste_free(K, P, In.h, In.w)
                ? 1.0
                : static_cast<double>(out_shape.plane()) / static_cast<double>((In.h + 2 * P) * (In.w + 2 * P));
        // The epilogue over a GEMM's output, in place.
        void apply_epilogue(run_context& cx, const kernels::conv_epilogue& e, float* y, std::size_t cols) const {
            if (e.empty()) return;
            parallel_for(cx.pool, cout_, 1, [&](std::size_t o0, std::size_t o1) {
                for (std::size_t o = o0; o < o1; ++o) e.apply(o, y + o * cols, y + o * cols, cols);
            });
        }
        kernels::conv_geometry geometry(std::size_t n) const {
            return {n, cin_, In.h, In.w, K, S, P, out_shape.h, out_shape.w};
        }
        kernels::direct_geometry direct_geometry(std::size_t n) const { return {n, cin_, In.h, In.w, K, P}; }
        // The packed_weights layout key of the direct convolution's weights (gemm's are 0 and tile rows).
        static constexpr std::size_t direct_layout = 1000, few_pixel_layout = 1001;
        aligned_buffer<float> weight_, dweight_, flipped_, bias_, dbias_;
        std::vector<std::size_t> origin_;
        kernels::packed_weights packed_;
        std::size_t cin_ = In.c, cout_ = Out;
        conv_method method_ = conv_method::automatic;
    };
};

// The common shapes, by name.
template <std::size_t Out, bool Bias = false>
using conv3x3 = conv2d<Out, 3, 1, 1, Bias>;
template <std::size_t Out, bool Bias = false>
using conv1x1 = conv2d<Out, 1, 1, 0, Bias>;

}  // namespace sgp::layers
