#pragma once
// sequential<input<C, H, W>, layers...>: a network declared as a type. Every layer's shape,
// the parameter count and the multiply-add count are compile-time constants; forward and
// backward are generated from the list. Activations use the channel-major layout
// [C][N][H][W] (one contiguous run per channel of the whole batch), so a convolution over a
// batch is one GEMM and batch-norm statistics are contiguous sums. The network's output is
// [classes][N].
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/cost.hpp"
#include "sgp/core/error.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/core/shape.hpp"
#include "sgp/kernels/direct_conv.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp {

namespace detail {

// The input's shape; for anything that is not input<C, H, W>, a stand-in so that the misuse
// reports one error, not a cascade.
template <class T>
struct input_of {
    static constexpr bool ok = false;
    static constexpr shape value{1, 1, 1, false};
};
template <std::size_t C, std::size_t H, std::size_t W>
struct input_of<input<C, H, W>> {
    static constexpr bool ok = true;
    static constexpr shape value = input<C, H, W>::value;
};

// Binds each declaration to the shape the previous one produces.
template <shape In, class... Ds>
struct bind_all {
    using type = std::tuple<>;
    static constexpr shape out = In;
};
template <shape In, class D, class... Ds>
struct bind_all<In, D, Ds...> {
    using head = typename D::template bind<In>;
    using rest = bind_all<head::out_shape, Ds...>;
    using type = decltype(std::tuple_cat(std::declval<std::tuple<head>>(), std::declval<typename rest::type>()));
    static constexpr shape out = rest::out;
};

}  // namespace detail

template <class In, class... Ds>
class sequential {
    static_assert(detail::input_of<In>::ok,
                  "sequential<input<C, H, W>, layers...>: the first entry must be input<C, H, W>");
    static_assert(sizeof...(Ds) > 0, "sequential: a network needs at least one layer");
    using chain = detail::bind_all<detail::input_of<In>::value, Ds...>;

public:
    using layers_type = typename chain::type;
    static constexpr std::size_t layer_count = sizeof...(Ds);
    template <std::size_t I>
    using layer_type = std::tuple_element_t<I, layers_type>;

    static constexpr shape input_shape = detail::input_of<In>::value;
    static constexpr shape output_shape = chain::out;

private:
    template <class F>
    static constexpr auto over_layers(F f) {
        return [f]<std::size_t... I>(std::index_sequence<I...>) {
            return f.template operator()<layer_type<I>...>();
        }
        (std::make_index_sequence<layer_count>{});
    }

public:
    // Shape of activation i: shapes[0] is the input, shapes[i + 1] the output of layer i.
    static constexpr std::array<shape, layer_count + 1> shapes = over_layers([]<class... L>() {
        return std::array<shape, layer_count + 1>{input_shape, L::out_shape...};
    });
    static constexpr std::size_t parameter_count =
        over_layers([]<class... L>() { return (std::size_t{0} + ... + L::parameter_count); });
    static constexpr std::size_t macs = over_layers([]<class... L>() { return (std::size_t{0} + ... + L::macs); });
    // Each layer's kind ("conv2d", "batch_norm", ...), for reports and for pruning's channel groups.
    static constexpr std::array<std::string_view, layer_count> kinds =
        over_layers([]<class... L>() { return std::array<std::string_view, layer_count>{L::kind...}; });

    explicit sequential(std::uint64_t seed = 1) { init(seed); }

    // Fresh weights; each layer draws from its own stream, so inserting a layer does not
    // change the others' initial weights.
    void init(std::uint64_t seed) {
        for_each_layer([&](std::size_t i, auto& l) {
            rng r(mix64(seed, i));
            l.init(r);
        });
        update_widths();
    }

    template <std::size_t I>
    auto& layer() {
        return std::get<I>(layers_);
    }
    template <std::size_t I>
    const auto& layer() const {
        return std::get<I>(layers_);
    }

    // f(index, layer&) for every layer, in order.
    template <class F>
    void for_each_layer(F&& f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (f(I, std::get<I>(layers_)), ...);
        }
        (std::make_index_sequence<layer_count>{});
    }
    template <class F>
    void for_each_layer(F&& f) const {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (f(I, std::get<I>(layers_)), ...);
        }
        (std::make_index_sequence<layer_count>{});
    }

    // f(key, tensor_ref) for every parameter and buffer, keyed like a PyTorch
    // nn.Sequential's state_dict ("3.weight", "4.running_var", ...), with `prefix` in front.
    template <class F>
    void for_each_tensor(F&& f, const std::string& prefix = "") {
        for_each_layer([&](std::size_t i, auto& l) {
            l.for_each_tensor(
                [&](const tensor_ref& t) { f(prefix + std::to_string(i) + "." + std::string(t.name), t); });
        });
    }

    // Propagates each layer's active output width to the next layer's input width.
    void update_widths() {
        std::size_t c = input_shape.c;
        for_each_layer([&](std::size_t, auto& l) {
            l.set_input_channels(c);
            c = l.out_channels();
        });
    }

    // Active channels of every activation (equal to `shapes[i].c` until something narrows a layer).
    std::array<std::size_t, layer_count + 1> widths() const {
        std::array<std::size_t, layer_count + 1> w{};
        w[0] = input_shape.c;
        for_each_layer([&](std::size_t i, const auto& l) { w[i + 1] = l.out_channels(); });
        return w;
    }

    // Parameters (counted over the tensors) and multiply-adds per image at the current active widths.
    std::size_t active_parameter_count() {
        std::size_t n = 0;
        for_each_tensor([&](const std::string&, const tensor_ref& t) {
            if (t.role == tensor_role::parameter) n += t.size();
        });
        return n;
    }
    std::size_t active_macs() const { return cost_at<sequential>(widths()).macs; }

    // Sizes every buffer for batches of up to `batch` images. Nothing is allocated by
    // forward/backward for batches no larger than this.
    void reserve(std::size_t batch) {
        if (batch <= capacity_) return;
        capacity_ = batch;
        acts_.resize(layer_count + 1);
        std::size_t grad = 0, work = 0;
        for (std::size_t i = 0; i <= layer_count; ++i) {
            acts_[i].resize(batch * shapes[i].size());
            grad = std::max(grad, batch * shapes[i].size());
        }
        for_each_layer([&](std::size_t, auto& l) { work = std::max(work, l.workspace(batch)); });
        grad_[0].resize(grad);
        grad_[1].resize(grad);
        scratch_[0].resize(work);
        scratch_[1].resize(work);
    }
    std::size_t capacity() const { return capacity_; }

    // The input buffer, channel-major [C][n][H][W]; fill it, then call forward(n, ...).
    float* input_buffer() { return acts_.empty() ? nullptr : acts_[0].data(); }

    // Copies NCHW images (the usual layout of a data set or of PyTorch) into the input buffer.
    void set_input_nchw(const float* x, std::size_t n) {
        reserve(n);
        constexpr std::size_t C = input_shape.c, P = input_shape.plane();
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < n; ++i)
                std::copy(x + (i * C + c) * P, x + (i * C + c + 1) * P, acts_[0].data() + (c * n + i) * P);
    }

    // Runs the network on the n images in the input buffer. Returns the output,
    // [out channels][n] (channel-major), valid until the next forward.
    const float* forward(std::size_t n, run_context cx) {
        if (n == 0 || n > capacity_)
            fail("sequential::forward", "batch of " + std::to_string(n) + " images, buffers reserved for " +
                                            std::to_string(capacity_) + " (call reserve first)");
        cx.scratch = &scratch_[0];
        cx.scratch2 = &scratch_[1];
        formed_.fill(true);
        forward_from<0>(cx, n);
        last_n_ = n;
        return acts_[layer_count].data();
    }

    // Back-propagates dout ([out channels][n]) through the last forward (which must have
    // been in training mode), writing every parameter's gradient.
    void backward(const float* dout, run_context cx) {
        const std::size_t n = last_n_;
        cx.scratch = &scratch_[0];
        cx.scratch2 = &scratch_[1];
        const float* dy = dout;
        backward_from<layer_count>(cx, dy, n);
    }

    // Activation i of the last forward ([C][n][H][W]); 0 is the input. An evaluation forward
    // with run_context::fuse leaves the outputs of a fused convolution and batch norm unformed.
    const float* activation(std::size_t i) const {
        if (i < formed_.size() && !formed_[i])
            fail("sequential::activation", "activation " + std::to_string(i) +
                                               " was not formed: the last forward fused it away (evaluation with "
                                               "run_context::fuse; set fuse = false to form every activation)");
        return acts_.at(i).data();
    }

    // How many layers after layer I an evaluation forward fuses into it: a conv2d takes a
    // following batch_norm, a relu, or both.
    template <std::size_t I>
    static constexpr std::size_t fused_after() {
        if constexpr (I + 1 >= layer_count || kinds[I] != "conv2d") {
            return 0;
        } else if constexpr (kinds[I + 1] == "relu") {
            return 1;
        } else if constexpr (kinds[I + 1] == "batch_norm") {
            return I + 2 < layer_count && kinds[I + 2] == "relu" ? 2 : 1;
        } else {
            return 0;
        }
    }

private:
    template <std::size_t I>
    void forward_from(run_context& cx, std::size_t n) {
        if constexpr (I < layer_count) {
            constexpr std::size_t F = fused_after<I>();
            if constexpr (F > 0) {
                if (!cx.training && cx.fuse) {
                    kernels::conv_epilogue e;
                    if constexpr (kinds[I + 1] == "batch_norm")
                        std::tie(e.scale, e.shift) = layer<I + 1>().eval_scale_shift();
                    e.relu = kinds[I + F] == "relu";
                    cx.layer_index = I;
                    layer<I>().forward_with(cx, acts_[I].data(), acts_[I + F + 1].data(), n, e);
                    for (std::size_t i = I + 1; i <= I + F; ++i) formed_[i] = false;
                    return forward_from<I + F + 1>(cx, n);
                }
            }
            cx.layer_index = I;
            layer<I>().forward(cx, acts_[I].data(), acts_[I + 1].data(), n);
            forward_from<I + 1>(cx, n);
        }
    }

    template <std::size_t I>
    void backward_from(run_context& cx, const float* dy, std::size_t n) {
        if constexpr (I > 0) {
            cx.layer_index = I - 1;
            float* dx = (I - 1 == 0) ? nullptr : grad_[(I - 1) % 2].data();
            std::get<I - 1>(layers_).backward(cx, acts_[I - 1].data(), acts_[I].data(), dy, dx, n);
            backward_from<I - 1>(cx, dx, n);
        }
    }

    layers_type layers_;
    std::vector<aligned_buffer<float>> acts_;
    std::array<bool, layer_count + 1> formed_{};
    aligned_buffer<float> grad_[2], scratch_[2];
    std::size_t capacity_ = 0, last_n_ = 0;
};

}  // namespace sgp
