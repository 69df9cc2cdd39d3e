#pragma once
// chain<layers...>: layers run one after the other, itself a layer (a composite). A network
// is a chain (core/sequential.hpp adds the input and the buffers around one); a residual
// block's body and shortcut and a concat's branches are chains.
//
// The composite protocol, which residual.hpp and concat.hpp follow too:
//   node_count          nodes it takes in the network's description (leaves and joins)
//   describe(g, p, in)  appends its nodes to the description, with paths under p
//   for_each_node(b, f) f(id, leaf&) for every leaf, ids from b
//   visit_tensors(p, f) f(key, tensor_ref) for every tensor, keys under p
//   reserve(n)          sizes its own activations for batches of n
// and the common contract (layers/contract.hpp). Activations are channel-major
// [C][N][H][W]; a chain owns the activations between its layers, its parent the ends.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/graph.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/kernels/direct_conv.hpp"
#include "sgp/layers/contract.hpp"
#include "sgp/layers/named.hpp"

namespace sgp::layers {

namespace detail {

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

// Whether layer L runs a convolution epilogue as it writes (conv2d's forward_with).
template <class L>
concept takes_epilogue = requires(L& l, run_context& cx, const float* x, float* y, std::size_t n) {
    l.forward_with(cx, x, y, n, kernels::conv_epilogue{});
};

// One assertion per layer, so that the compiler's notes name the layer and what it lacks.
template <class L>
constexpr bool meets_contract() {
    static_assert(bound_layer<L>,
                  "chain: a layer does not meet sgp's layer contract (layers/contract.hpp: role, cost_at, "
                  "declaration, fold_int8, forward, backward); the notes below name what it lacks (g++: "
                  "-fconcepts-diagnostics-depth=3 for the member)");
    return true;
}

}  // namespace detail

// Every tensor of layer l as (key, tensor_ref), keys under `path` as a PyTorch state_dict
// names them.
template <class L, class F>
void visit_tensors(L& l, const std::string& path, F&& f) {
    if constexpr (composite_layer<L>)
        l.visit_tensors(path, f);
    else
        l.for_each_tensor([&](const tensor_ref& t) { f(detail::join_path(path, std::string(t.name)), t); });
}

// f(id, leaf&) for every leaf of l, ids from `base`.
template <class L, class F>
void for_each_node(L& l, std::size_t base, F&& f) {
    if constexpr (composite_layer<L>)
        l.for_each_node(base, f);
    else
        f(base, l);
}

// Appends l's nodes to the description; returns its output's channels.
template <class L>
graph::space describe(graph::network_graph& g, const std::string& path, const graph::space& in) {
    if constexpr (composite_layer<L>)
        return L::describe(g, path, in);
    else
        return g.template leaf<L>(path, in);
}

template <class L>
void reserve_layer(L& l, std::size_t n) {
    if constexpr (composite_layer<L>) l.reserve(n);
}

template <class... Ds>
struct chain {
    static_assert(sizeof...(Ds) > 0, "chain: a chain needs at least one layer");

    template <shape In>
    class bind {
        using binding = detail::bind_all<In, Ds...>;
        using decls = std::tuple<Ds...>;

    public:
        using children_type = typename binding::type;
        static constexpr std::size_t count = sizeof...(Ds);
        template <std::size_t I>
        using child_type = std::tuple_element_t<I, children_type>;

    private:
        template <std::size_t I>
        using decl_type = std::tuple_element_t<I, decls>;
        template <class F>
        static constexpr auto over_children(F f) {
            return [f]<std::size_t... I>(std::index_sequence<I...>) {
                return f.template operator()<child_type<I>...>();
            }
            (std::make_index_sequence<count>{});
        }
        static constexpr bool contract_met =
            over_children([]<class... L>() { return (detail::meets_contract<L>() && ...); });
        static_assert(contract_met);

    public:
        static constexpr std::string_view kind = "chain";
        static constexpr bool composite = true;
        static constexpr shape in_shape = In;
        static constexpr shape out_shape = binding::out;
        static constexpr std::size_t parameter_count =
            over_children([]<class... L>() { return (std::size_t{0} + ... + L::parameter_count); });
        static constexpr std::size_t macs =
            over_children([]<class... L>() { return (std::size_t{0} + ... + L::macs); });
        static constexpr std::size_t node_count =
            over_children([]<class... L>() { return (std::size_t{0} + ... + node_count_v<L>); });
        // Shape of activation i: shapes[0] is the input, shapes[i + 1] the output of child i.
        static constexpr std::array<shape, count + 1> shapes = over_children([]<class... L>() {
            return std::array<shape, count + 1>{In, L::out_shape...};
        });
        // The first node id of child i, relative to the chain's first.
        static constexpr std::array<std::size_t, count + 1> node_offset = over_children([]<class... L>() {
            std::array<std::size_t, count + 1> o{};
            std::size_t k = 0, at = 0;
            ((o[k++] = at, at += node_count_v<L>), ...);
            o[count] = at;
            return o;
        });

        static constexpr std::size_t workspace(std::size_t n) {
            return over_children([n]<class... L>() { return std::max({std::size_t{0}, L::workspace(n)...}); });
        }

        template <std::size_t I>
        auto& child() {
            return std::get<I>(children_);
        }
        template <std::size_t I>
        const auto& child() const {
            return std::get<I>(children_);
        }
        // f(index, child&) for every child, in order.
        template <class F>
        void for_each_child(F&& f) {
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                (f(I, std::get<I>(children_)), ...);
            }
            (std::make_index_sequence<count>{});
        }
        template <class F>
        void for_each_child(F&& f) const {
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                (f(I, std::get<I>(children_)), ...);
            }
            (std::make_index_sequence<count>{});
        }
        static std::string child_name(std::size_t i) {
            std::string s;
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((I == i ? (s = detail::child_name<decl_type<I>>(I), 0) : 0), ...);
            }
            (std::make_index_sequence<count>{});
            return s;
        }

        // Child i draws from stream mix64(seed, i): inserting a layer does not change the
        // others' initial weights.
        void init_children(std::uint64_t seed) {
            for_each_child([&](std::size_t i, auto& l) {
                rng r(mix64(seed, i));
                l.init(r);
            });
        }
        template <class R>
        void init(R& r) {
            init_children(r.next());
        }

        void set_input_channels(std::size_t c) {
            for_each_child([&](std::size_t, auto& l) {
                l.set_input_channels(c);
                c = l.out_channels();
            });
        }
        std::size_t input_channels() const { return std::get<0>(children_).input_channels(); }
        std::size_t out_channels() const { return std::get<count - 1>(children_).out_channels(); }

        void reserve(std::size_t n) {
            if (n <= capacity_.value) return;
            capacity_.value = n;
            std::size_t grad = 0;
            for (std::size_t i = 1; i < count; ++i) {
                acts_[i].resize(n * shapes[i].size());
                grad = std::max(grad, n * shapes[i].size());
            }
            grad_[0].resize(grad);
            grad_[1].resize(grad);
            for_each_child([&](std::size_t, auto& l) { reserve_layer(l, n); });
        }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            ends_ = {x, y};
            formed_.fill(true);
            const std::size_t base = cx.layer_index;
            forward_from<0>(cx, n, base);
            cx.layer_index = base;
        }

        void backward(run_context& cx, const float* x, const float* y, const float* dy, float* dx, std::size_t n) {
            ends_ = {x, const_cast<float*>(y)};
            const std::size_t base = cx.layer_index;
            backward_from<count>(cx, dy, dx, n, base);
            cx.layer_index = base;
        }

        // Activation i of the last forward (0: the input, count: the output).
        const float* activation(std::size_t i) const {
            if (i < formed_.size() && !formed_[i])
                fail("sequential::activation", "activation " + std::to_string(i) +
                                                   " was not formed: the last forward fused it away (evaluation with "
                                                   "run_context::fuse; set fuse = false to form every activation)");
            return src(i);
        }

        // How many children after child I an evaluation forward fuses into it: a layer that takes
        // an epilogue (conv2d) takes a following affine layer (batch_norm), a clamp (relu,
        // relu6), or both.
        template <std::size_t I>
        static constexpr std::size_t fused_after() {
            if constexpr (I + 1 >= count || !detail::takes_epilogue<child_type<I>>) {
                return 0;
            } else {
                constexpr fusion next = fuses_as_v<child_type<I + 1>>;
                if constexpr (next == fusion::relu || next == fusion::relu6) {
                    return 1;
                } else if constexpr (next == fusion::affine) {
                    if constexpr (I + 2 < count) {
                        constexpr fusion after = fuses_as_v<child_type<I + 2>>;
                        return after == fusion::relu || after == fusion::relu6 ? 2 : 1;
                    } else {
                        return 1;
                    }
                } else {
                    return 0;
                }
            }
        }

        template <class F>
        void for_each_tensor(F&& f) {
            for_each_child([&](std::size_t, auto& l) { l.for_each_tensor(f); });
        }
        template <class F>
        void visit_tensors(const std::string& path, F&& f) {
            for_each_child([&](std::size_t i, auto& l) { sgp::layers::visit_tensors(l, join(path, i), f); });
        }
        template <class F>
        void for_each_node(std::size_t base, F&& f) {
            for_each_child([&](std::size_t i, auto& l) { sgp::layers::for_each_node(l, base + node_offset[i], f); });
        }
        static graph::space describe(graph::network_graph& g, const std::string& path, graph::space in) {
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((in = sgp::layers::describe<child_type<I>>(g, join(path, I), in)), ...);
            }
            (std::make_index_sequence<count>{});
            return in;
        }

        // Its children's declarations, comma-separated, at their active widths.
        std::string children_declaration() const {
            std::string s;
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((s +=
                  (I ? ",\n    " : "") + detail::named_declaration<decl_type<I>>(std::get<I>(children_).declaration())),
                 ...);
            }
            (std::make_index_sequence<count>{});
            return s;
        }
        std::string declaration() const { return "sgp::layers::chain<" + children_declaration() + ">"; }

        template <class Q>
        void fold_int8(Q& q, std::size_t base) {
            for_each_child([&](std::size_t i, auto& l) { l.fold_int8(q, base + node_offset[i]); });
        }

    private:
        static std::string join(const std::string& path, std::size_t i) {
            return detail::join_path(path, child_name(i));
        }
        // Activation i as input (0: the chain's input) and as output (count: the chain's output).
        const float* src(std::size_t i) const {
            return i == 0 ? ends_.first : i == count ? ends_.second : acts_[i].data();
        }
        float* dst(std::size_t i) { return i == count ? ends_.second : acts_[i].data(); }

        template <std::size_t I>
        void forward_from(run_context& cx, std::size_t n, std::size_t base) {
            if constexpr (I < count) {
                using L = child_type<I>;
                constexpr std::size_t F = fused_after<I>();
                cx.layer_index = base + node_offset[I];
                if constexpr (!composite_layer<L>)
                    if (cx.observer) cx.observer->input(cx.layer_index, src(I), n);
                if constexpr (F > 0) {
                    if (!cx.training && cx.fuse) {
                        kernels::conv_epilogue e;
                        if constexpr (fuses_as_v<child_type<I + 1>> == fusion::affine)
                            std::tie(e.scale, e.shift) = child<I + 1>().eval_scale_shift();
                        constexpr fusion clamp = fuses_as_v<child_type<I + F>>;
                        e.relu = clamp == fusion::relu;
                        e.relu6 = clamp == fusion::relu6;
                        child<I>().forward_with(cx, src(I), dst(I + F + 1), n, e);
                        for (std::size_t i = I + 1; i <= I + F; ++i) formed_[i] = false;
                        if (cx.observer) cx.observer->output(base + node_offset[I + F], src(I + F + 1), n);
                        return forward_from<I + F + 1>(cx, n, base);
                    }
                }
                std::get<I>(children_).forward(cx, src(I), dst(I + 1), n);
                if constexpr (!composite_layer<L>)
                    if (cx.observer) cx.observer->output(base + node_offset[I], src(I + 1), n);
                forward_from<I + 1>(cx, n, base);
            }
        }

        template <std::size_t I>
        void backward_from(run_context& cx, const float* dy, float* dx_out, std::size_t n, std::size_t base) {
            if constexpr (I > 0) {
                cx.layer_index = base + node_offset[I - 1];
                float* dx = (I - 1 == 0) ? dx_out : grad_[(I - 1) % 2].data();
                std::get<I - 1>(children_).backward(cx, src(I - 1), src(I), dy, dx, n);
                backward_from<I - 1>(cx, dx, dx_out, n, base);
            }
        }

        children_type children_;
        std::array<transient_buffer<float>, count + 1> acts_;  // [1, count): the inner activations
        std::array<bool, count + 1> formed_{};
        std::pair<const float*, float*> ends_{nullptr, nullptr};
        transient_buffer<float> grad_[2];
        transient_capacity capacity_;
    };
};

}  // namespace sgp::layers
