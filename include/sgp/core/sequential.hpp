#pragma once
// sequential<input<C, H, W>, layers...>: a network declared as a type. It is a chain of
// layers (layers/chain.hpp; any of them may be a composite: residual, concat, a chain) with
// the input, the output and the scratch buffers around it. Every layer's shape, the parameter
// count and the multiply-add count are compile-time constants; forward and backward are
// generated from the list. Activations use the channel-major layout [C][N][H][W] (one
// contiguous run per channel of the whole batch), so a convolution over a batch is one GEMM
// and batch-norm statistics are contiguous sums. The network's output is [classes][N].
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/cost.hpp"
#include "sgp/core/error.hpp"
#include "sgp/core/graph.hpp"
#include "sgp/core/shape.hpp"
#include "sgp/layers/chain.hpp"
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

}  // namespace detail

template <class In, class... Ds>
class sequential {
    static_assert(detail::input_of<In>::ok,
                  "sequential<input<C, H, W>, layers...>: the first entry must be input<C, H, W>");
    static_assert(sizeof...(Ds) > 0, "sequential: a network needs at least one layer");

public:
    using body_type = typename layers::chain<Ds...>::template bind<detail::input_of<In>::value>;
    static constexpr std::size_t layer_count = sizeof...(Ds);
    template <std::size_t I>
    using layer_type = typename body_type::template child_type<I>;

    static constexpr shape input_shape = detail::input_of<In>::value;
    static constexpr shape output_shape = body_type::out_shape;
    // Shape of activation i: shapes[0] is the input, shapes[i + 1] the output of layer i.
    static constexpr auto shapes = body_type::shapes;
    static constexpr std::size_t parameter_count = body_type::parameter_count;
    static constexpr std::size_t macs = body_type::macs;
    // Nodes of the description: one per leaf layer and per join (residual add, concat).
    static constexpr std::size_t node_count = body_type::node_count;
    // Each top-level layer's kind ("conv2d", "batch_norm", "residual", ...), for reports.
    static constexpr std::array<std::string_view, layer_count> kinds = [] {
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return std::array<std::string_view, layer_count>{layer_type<I>::kind...};
        }
        (std::make_index_sequence<layer_count>{});
    }();

    explicit sequential(std::uint64_t seed = 1) { init(seed); }

    // Fresh weights; each layer draws from its own stream, so inserting a layer does not
    // change the others' initial weights.
    void init(std::uint64_t seed) {
        body_.init_children(seed);
        update_widths();
    }

    // The network's description (core/graph.hpp), built once per network type.
    static const graph::network_graph& graph() {
        static const graph::network_graph g = [] {
            graph::network_graph d;
            graph::space in{{d.new_class(input_shape.c, graph::no_node, true), 1}};
            d.fix(body_type::describe(d, "", in));  // the output channels are the classes
            return d;
        }();
        return g;
    }

    template <std::size_t I>
    auto& layer() {
        return body_.template child<I>();
    }
    template <std::size_t I>
    const auto& layer() const {
        return body_.template child<I>();
    }
    body_type& body() { return body_; }

    // f(index, layer&) for every top-level layer, in order.
    template <class F>
    void for_each_layer(F&& f) {
        body_.for_each_child(f);
    }
    template <class F>
    void for_each_layer(F&& f) const {
        body_.for_each_child(f);
    }
    // f(node id, leaf&) for every leaf layer at any depth, in forward order.
    template <class F>
    void for_each_node(F&& f) {
        body_.for_each_node(0, f);
    }

    // f(key, tensor_ref) for every parameter and buffer, keyed as PyTorch's state_dict names
    // them ("3.weight" in a flat list, "layer1.0.conv1.weight" in named blocks), with `prefix`
    // in front.
    template <class F>
    void for_each_tensor(F&& f, const std::string& prefix = "") {
        body_.visit_tensors("", [&](const std::string& key, const tensor_ref& t) { f(prefix + key, t); });
    }

    // Propagates each layer's active output width to the next layer's input width.
    void update_widths() { body_.set_input_channels(input_shape.c); }

    // Active channels of every top-level activation (equal to `shapes[i].c` until something
    // narrows a layer).
    std::array<std::size_t, layer_count + 1> widths() const {
        std::array<std::size_t, layer_count + 1> w{};
        w[0] = input_shape.c;
        for_each_layer([&](std::size_t i, const auto& l) { w[i + 1] = l.out_channels(); });
        return w;
    }

    // Active width of every channel class of the description (indexed by class).
    std::vector<std::size_t> class_widths() {
        const auto& g = graph();
        std::vector<std::size_t> w = g.declared_widths();
        std::vector<std::size_t> created(g.nodes.size(), graph::no_node);
        for (std::size_t c = 0; c < g.classes.size(); ++c)
            if (g.classes[c].creator != graph::no_node) created[g.classes[c].creator] = c;
        for_each_node([&](std::size_t id, auto& l) {
            if (created[id] != graph::no_node) w[created[id]] = l.out_channels();
        });
        for (std::size_t c = 0; c < w.size(); ++c) w[c] = w[g.root(c)];
        return w;
    }

    // Parameters and multiply-adds per image at the current active widths.
    cost active_cost() { return graph().cost_at(class_widths()); }
    // Parameters (counted over the tensors) and multiply-adds per image at the current widths.
    std::size_t active_parameter_count() {
        std::size_t n = 0;
        for_each_tensor([&](const std::string&, const tensor_ref& t) {
            if (t.role == tensor_role::parameter) n += t.size();
        });
        return n;
    }
    std::size_t active_macs() { return active_cost().macs; }

    // Sizes every buffer for batches of up to `batch` images. Nothing is allocated by
    // forward/backward for batches no larger than this.
    void reserve(std::size_t batch) {
        if (batch <= capacity_.value) return;
        capacity_.value = batch;
        input_.resize(batch * input_shape.size());
        output_.resize(batch * output_shape.size());
        body_.reserve(batch);
        const std::size_t work = body_type::workspace(batch);
        scratch_[0].resize(work);
        scratch_[1].resize(work);
    }
    std::size_t capacity() const { return capacity_.value; }

    // The input buffer, channel-major [C][n][H][W]; fill it, then call forward(n, ...).
    float* input_buffer() { return capacity_.value == 0 ? nullptr : input_.data(); }

    // Copies NCHW images (the usual layout of a data set or of PyTorch) into the input buffer.
    void set_input_nchw(const float* x, std::size_t n) {
        reserve(n);
        constexpr std::size_t C = input_shape.c, P = input_shape.plane();
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < n; ++i)
                std::copy(x + (i * C + c) * P, x + (i * C + c + 1) * P, input_.data() + (c * n + i) * P);
    }

    // Runs the network on the n images in the input buffer. Returns the output,
    // [out channels][n] (channel-major), valid until the next forward.
    const float* forward(std::size_t n, run_context cx) {
        if (n == 0 || n > capacity_.value)
            fail("sequential::forward", "batch of " + std::to_string(n) + " images, buffers reserved for " +
                                            std::to_string(capacity_.value) + " (call reserve first)");
        cx.scratch = &scratch_[0];
        cx.scratch2 = &scratch_[1];
        cx.layer_index = 0;
        body_.forward(cx, input_.data(), output_.data(), n);
        last_n_ = n;
        return output_.data();
    }

    // Back-propagates dout ([out channels][n]) through the last forward (which must have
    // been in training mode), writing every parameter's gradient.
    void backward(const float* dout, run_context cx) {
        cx.scratch = &scratch_[0];
        cx.scratch2 = &scratch_[1];
        cx.layer_index = 0;
        body_.backward(cx, input_.data(), output_.data(), dout, nullptr, last_n_);
    }

    // Activation i of the last forward ([C][n][H][W]); 0 is the input. An evaluation forward
    // with run_context::fuse leaves the outputs of a fused convolution and batch norm unformed.
    const float* activation(std::size_t i) const {
        if (i > layer_count) fail("sequential::activation", "no activation " + std::to_string(i));
        return body_.activation(i);
    }

    // How many layers after layer I an evaluation forward fuses into it (layers/chain.hpp).
    template <std::size_t I>
    static constexpr std::size_t fused_after() {
        return body_type::template fused_after<I>();
    }

    // The declaration of this network at its active widths (the static header's type).
    std::string declaration() const {
        return "sgp::sequential<sgp::input<" + std::to_string(input_shape.c) + ", " + std::to_string(input_shape.h) +
               ", " + std::to_string(input_shape.w) + ">,\n    " + body_.children_declaration() + ">";
    }

private:
    body_type body_;
    // A copy of a network copies its layers (weights, statistics, widths), not its batch
    // buffers: it reserves its own (core/aligned_buffer.hpp's transient_buffer).
    transient_buffer<float> input_, output_, scratch_[2];
    transient_capacity capacity_;
    std::size_t last_n_ = 0;
};

}  // namespace sgp
