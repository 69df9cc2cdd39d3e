#pragma once
// Residual blocks: y = body(x) + shortcut(x), then a ReLU (residual, as ResNets do) or not
// (linear_residual, MobileNetV2's linear bottleneck).
//   residual<conv1, bn1, relu, conv2, bn2>                       identity shortcut
//   residual<conv1, ..., shortcut<conv2d<C, 1, 2, 0>, batch_norm>>  a projection when the shape changes
// The body's layers are keyed at the block's level ("layer1.0.conv1.weight") and the
// shortcut's under "shortcut" ("layer1.0.shortcut.0.weight"), as the CIFAR ResNets of
// PyTorch name them. For pruning, the add makes the body's output channels and the
// shortcut's the same channels: one group (core/graph.hpp).
#include <algorithm>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>

#include "sgp/core/parallel.hpp"
#include "sgp/layers/chain.hpp"

namespace sgp::layers {

// The projection of a residual block: a chain of layers applied to the block's input.
template <class... Ds>
struct shortcut {
    static_assert(sizeof...(Ds) > 0, "shortcut<layers...>: a projection needs at least one layer");
    using chain_type = chain<Ds...>;
};

namespace detail {

template <class T>
struct is_shortcut : std::false_type {};
template <class... Ds>
struct is_shortcut<shortcut<Ds...>> : std::true_type {};

// Splits a block's list into its body (a chain) and its shortcut (void: identity).
template <class Body, class Shortcut, class... Ds>
struct split_block {
    using body = Body;
    using shortcut_chain = Shortcut;
};
template <class... B, class S, class D, class... Ds>
struct split_block<std::tuple<B...>, S, D, Ds...> {
    static constexpr bool sc = is_shortcut<D>::value;
    static_assert(!(sc && !std::is_void_v<S>), "residual: a block has at most one shortcut<...>");
    using next =
        std::conditional_t<sc, split_block<std::tuple<B...>, D, Ds...>, split_block<std::tuple<B..., D>, S, Ds...>>;
    using body = typename next::body;
    using shortcut_chain = typename next::shortcut_chain;
};

template <class T>
struct tuple_to_chain;
template <class... B>
struct tuple_to_chain<std::tuple<B...>> {
    using type = chain<B...>;
};

// A shortcut's bound chain, or the identity.
template <class S, shape In>
struct shortcut_of {
    using type = typename S::chain_type::template bind<In>;
    static constexpr bool identity = false;
    static constexpr shape out = type::out_shape;
    static constexpr std::size_t nodes = type::node_count, parameters = type::parameter_count, macs = type::macs;
};
template <shape In>
struct shortcut_of<void, In> {
    struct type {};
    static constexpr bool identity = true;
    static constexpr shape out = In;
    static constexpr std::size_t nodes = 0, parameters = 0, macs = 0;
};

}  // namespace detail

template <bool Relu, class... Ds>
struct residual_t {
    template <shape In>
    class bind {
        using split = detail::split_block<std::tuple<>, void, Ds...>;
        using body_type = typename detail::tuple_to_chain<typename split::body>::type::template bind<In>;
        using sc = detail::shortcut_of<typename split::shortcut_chain, In>;
        using shortcut_type = typename sc::type;
        static_assert(body_type::out_shape == sc::out,
                      "residual: the body's output shape differs from its shortcut's (the input, for an identity "
                      "shortcut); give the block a shortcut<...> that maps the input to the body's output, e.g. "
                      "shortcut<conv2d<C, 1, S, 0>, batch_norm>");
        static_assert(!In.flat, "residual: blocks run on C x H x W maps");

    public:
        static constexpr std::string_view kind = Relu ? "residual" : "linear_residual";
        static constexpr bool composite = true;
        static constexpr shape in_shape = In;
        static constexpr shape out_shape = body_type::out_shape;
        static constexpr std::size_t parameter_count = body_type::parameter_count + sc::parameters;
        static constexpr std::size_t macs = body_type::macs + sc::macs;
        // The body's nodes, the shortcut's, then the add.
        static constexpr std::size_t node_count = body_type::node_count + sc::nodes + 1;

        static constexpr std::size_t workspace(std::size_t n) {
            if constexpr (sc::identity)
                return body_type::workspace(n);
            else
                return std::max(body_type::workspace(n), shortcut_type::workspace(n));
        }

        template <class R>
        void init(R& r) {
            body_.init(r);
            if constexpr (!sc::identity) shortcut_.init(r);
        }

        void set_input_channels(std::size_t c) {
            body_.set_input_channels(c);
            if constexpr (!sc::identity) shortcut_.set_input_channels(c);
            cin_ = c;
            const std::size_t s = sc::identity ? c : shortcut_out();
            if (s != body_.out_channels())
                fail("residual", "the body gives " + std::to_string(body_.out_channels()) +
                                     " channels and the shortcut " + std::to_string(s) +
                                     ": pruning must narrow both together (prune/groups.hpp)");
        }
        std::size_t input_channels() const { return cin_; }
        std::size_t out_channels() const { return body_.out_channels(); }

        void reserve(std::size_t n) {
            if (n <= capacity_.value) return;
            capacity_.value = n;
            body_.reserve(n);
            body_out_.resize(n * out_shape.size());
            dz_.resize(Relu ? n * out_shape.size() : 0);
            if constexpr (!sc::identity) {
                shortcut_.reserve(n);
                shortcut_out_.resize(n * out_shape.size());
                dxs_.resize(n * In.size());
            }
        }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            const std::size_t base = cx.layer_index;
            body_.forward(cx, x, body_out_.data(), n);
            const float* s = x;
            if constexpr (!sc::identity) {
                cx.layer_index = base + body_type::node_count;
                shortcut_.forward(cx, x, shortcut_out_.data(), n);
                s = shortcut_out_.data();
            }
            const std::size_t len = out_channels() * n * out_shape.plane();
            const float* b = body_out_.data();
            parallel_for(cx.pool, len, 4096, [&](std::size_t i0, std::size_t i1) {
                for (std::size_t i = i0; i < i1; ++i) {
                    const float v = b[i] + s[i];
                    y[i] = Relu ? (v > 0.f ? v : 0.f) : v;
                }
            });
            cx.layer_index = base;
            if (cx.observer) cx.observer->output(base + node_count - 1, y, n);
        }

        void backward(run_context& cx, const float* x, const float* y, const float* dy, float* dx, std::size_t n) {
            const std::size_t base = cx.layer_index;
            const std::size_t len = out_channels() * n * out_shape.plane();
            const float* dz = dy;
            if constexpr (Relu) {
                float* d = dz_.data();
                parallel_for(cx.pool, len, 4096, [&](std::size_t i0, std::size_t i1) {
                    for (std::size_t i = i0; i < i1; ++i) d[i] = y[i] > 0.f ? dy[i] : 0.f;
                });
                dz = d;
            }
            body_.backward(cx, x, body_out_.data(), dz, dx, n);
            const std::size_t in_len = cin_ * n * In.plane();
            if constexpr (sc::identity) {
                if (dx)
                    parallel_for(cx.pool, in_len, 4096, [&](std::size_t i0, std::size_t i1) {
                        for (std::size_t i = i0; i < i1; ++i) dx[i] += dz[i];
                    });
            } else {
                cx.layer_index = base + body_type::node_count;
                shortcut_.backward(cx, x, shortcut_out_.data(), dz, dx ? dxs_.data() : nullptr, n);
                if (dx) {
                    const float* d = dxs_.data();
                    parallel_for(cx.pool, in_len, 4096, [&](std::size_t i0, std::size_t i1) {
                        for (std::size_t i = i0; i < i1; ++i) dx[i] += d[i];
                    });
                }
            }
            cx.layer_index = base;
        }

        template <class F>
        void for_each_tensor(F&& f) {
            body_.for_each_tensor(f);
            if constexpr (!sc::identity) shortcut_.for_each_tensor(f);
        }
        template <class F>
        void visit_tensors(const std::string& path, F&& f) {
            body_.visit_tensors(path, f);
            if constexpr (!sc::identity) shortcut_.visit_tensors(detail::join_path(path, "shortcut"), f);
        }
        template <class F>
        void for_each_node(std::size_t base, F&& f) {
            body_.for_each_node(base, f);
            if constexpr (!sc::identity) shortcut_.for_each_node(base + body_type::node_count, f);
        }
        static graph::space describe(graph::network_graph& g, const std::string& path, const graph::space& in) {
            const std::size_t before = g.current;
            const auto b = body_type::describe(g, path, in);
            const std::size_t body_node = g.current;
            graph::space s = in;
            std::size_t shortcut_node = before;
            if constexpr (!sc::identity) {
                g.current = before;  // the shortcut reads the block's input
                s = shortcut_type::describe(g, detail::join_path(path, "shortcut"), in);
                shortcut_node = g.current;
            }
            return g.add(path, b, s, body_node, shortcut_node, out_shape, Relu);
        }

        std::string declaration() const {
            std::string s =
                std::string("sgp::layers::") + (Relu ? "residual<" : "linear_residual<") + body_.children_declaration();
            if constexpr (!sc::identity) s += ",\n    sgp::layers::shortcut<" + shortcut_.children_declaration() + ">";
            return s + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t base) {
            const auto in = q.here();
            body_.fold_int8(q, base);
            const auto body_out = q.here();
            q.restore(in);
            if constexpr (!sc::identity) shortcut_.fold_int8(q, base + body_type::node_count);
            q.add(base + node_count - 1, {body_out, q.here()}, Relu);
        }

        body_type& body() { return body_; }

    private:
        std::size_t shortcut_out() const {
            if constexpr (sc::identity)
                return cin_;
            else
                return shortcut_.out_channels();
        }
        body_type body_;
        [[no_unique_address]] shortcut_type shortcut_;
        transient_buffer<float> body_out_, shortcut_out_, dz_, dxs_;
        transient_capacity capacity_;
        std::size_t cin_ = In.c;
    };
};

template <class... Ds>
using residual = residual_t<true, Ds...>;
template <class... Ds>
using linear_residual = residual_t<false, Ds...>;

}  // namespace sgp::layers
