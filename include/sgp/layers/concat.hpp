#pragma once
// concat<Branches...>: every branch (a chain<...>, or one layer) reads the same input; their
// outputs are joined along channels, in order, as torch.cat(dim=1). Branches are keyed by
// index ("3.0.weight"), or by name with named<"b1", chain<...>>. In the channel-major layout
// a branch's output channels are one contiguous block of the joined output, so every branch
// writes its part in place. For pruning, each branch's channels keep their own groups; a
// consumer of the joined output reads them as segments at their offsets (core/graph.hpp).
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sgp/core/parallel.hpp"
#include "sgp/layers/chain.hpp"

namespace sgp::layers {

template <class... Bs>
struct concat {
    static_assert(sizeof...(Bs) > 1, "concat<branches...>: a concat joins at least two branches");

    template <shape In>
    class bind {
        using decls = std::tuple<Bs...>;
        using branches_type = std::tuple<typename Bs::template bind<In>...>;
        template <std::size_t I>
        using branch_type = std::tuple_element_t<I, branches_type>;
        static constexpr std::size_t count = sizeof...(Bs);
        static constexpr std::array<shape, count> outs{Bs::template bind<In>::out_shape...};
        static constexpr bool same_map = [] {
            for (const auto& s : outs)
                if (s.h != outs[0].h || s.w != outs[0].w || s.flat != outs[0].flat) return false;
            return true;
        }();
        static_assert(same_map, "concat: the branches' outputs must have the same H x W to be joined along channels");
        static_assert((bound_layer<typename Bs::template bind<In>> && ...),
                      "concat: a branch does not meet sgp's layer contract (layers/contract.hpp)");

    public:
        static constexpr std::string_view kind = "concat";
        static constexpr bool composite = true;
        static constexpr shape in_shape = In;
        static constexpr shape out_shape{(std::size_t{0} + ... + Bs::template bind<In>::out_shape.c), outs[0].h,
                                         outs[0].w, outs[0].flat};
        static constexpr std::size_t parameter_count = (std::size_t{0} + ... + Bs::template bind<In>::parameter_count);
        static constexpr std::size_t macs = (std::size_t{0} + ... + Bs::template bind<In>::macs);
        static constexpr std::array<std::size_t, count + 1> node_offset = [] {
            std::array<std::size_t, count + 1> o{};
            std::size_t k = 0, at = 0;
            ((o[k++] = at, at += node_count_v<typename Bs::template bind<In>>), ...);
            o[count] = at;
            return o;
        }();
        // The branches' nodes, then the join.
        static constexpr std::size_t node_count = node_offset[count] + 1;

        static constexpr std::size_t workspace(std::size_t n) {
            return std::max({std::size_t{0}, Bs::template bind<In>::workspace(n)...});
        }

        template <class R>
        void init(R& r) {
            const std::uint64_t seed = r.next();
            for_each_branch([&](std::size_t i, auto& b) {
                rng ri(mix64(seed, i));
                b.init(ri);
            });
        }

        void set_input_channels(std::size_t c) {
            cin_ = c;
            for_each_branch([&](std::size_t, auto& b) { b.set_input_channels(c); });
        }
        std::size_t input_channels() const { return cin_; }
        std::size_t out_channels() const {
            std::size_t c = 0;
            for_each_branch([&](std::size_t, const auto& b) { c += b.out_channels(); });
            return c;
        }

        void reserve(std::size_t n) {
            if (n <= capacity_.value) return;
            capacity_.value = n;
            dxb_.resize(n * In.size());
            for_each_branch([&](std::size_t, auto& b) { reserve_layer(b, n); });
        }

        void forward(run_context& cx, const float* x, float* y, std::size_t n) {
            const std::size_t base = cx.layer_index;
            std::size_t at = 0;
            for_each_branch([&](std::size_t i, auto& b) {
                cx.layer_index = base + node_offset[i];
                observe_input(cx, b, x, n);
                b.forward(cx, x, y + at, n);
                observe_output(cx, b, y + at, n);
                at += b.out_channels() * n * out_shape.plane();
            });
            cx.layer_index = base;
            if (cx.observer) cx.observer->output(base + node_count - 1, y, n);
        }

        void backward(run_context& cx, const float* x, const float* y, const float* dy, float* dx, std::size_t n) {
            const std::size_t base = cx.layer_index, in_len = cin_ * n * In.plane();
            std::size_t at = 0;
            for_each_branch([&](std::size_t i, auto& b) {
                cx.layer_index = base + node_offset[i];
                float* d = (i == 0 || !dx) ? dx : dxb_.data();
                b.backward(cx, x, y + at, dy + at, d, n);
                if (i > 0 && dx)
                    parallel_for(cx.pool, in_len, 4096, [&](std::size_t i0, std::size_t i1) {
                        for (std::size_t k = i0; k < i1; ++k) dx[k] += d[k];
                    });
                at += b.out_channels() * n * out_shape.plane();
            });
            cx.layer_index = base;
        }

        template <class F>
        void for_each_tensor(F&& f) {
            for_each_branch([&](std::size_t, auto& b) { b.for_each_tensor(f); });
        }
        template <class F>
        void visit_tensors(const std::string& path, F&& f) {
            for_each_branch([&](std::size_t i, auto& b) { sgp::layers::visit_tensors(b, join(path, i), f); });
        }
        template <class F>
        void for_each_node(std::size_t base, F&& f) {
            for_each_branch([&](std::size_t i, auto& b) { sgp::layers::for_each_node(b, base + node_offset[i], f); });
        }
        static graph::space describe(graph::network_graph& g, const std::string& path, const graph::space& in) {
            std::vector<graph::space> parts;
            std::vector<std::size_t> ends;
            const std::size_t before = g.current;  // every branch reads the concat's input
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((g.current = before, parts.push_back(sgp::layers::describe<branch_type<I>>(g, join(path, I), in)),
                  ends.push_back(g.current)),
                 ...);
            }
            (std::make_index_sequence<count>{});
            return g.concat(path, parts, ends, out_shape);
        }

        std::string declaration() const {
            std::string s = "sgp::layers::concat<";
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((s += (I ? ",\n    " : "") +
                       detail::named_declaration<std::tuple_element_t<I, decls>>(std::get<I>(branches_).declaration())),
                 ...);
            }
            (std::make_index_sequence<count>{});
            return s + ">";
        }
        template <class Q>
        void fold_int8(Q& q, std::size_t base) {
            const auto in = q.here();
            std::vector<std::decay_t<decltype(in)>> parts;
            for_each_branch([&](std::size_t i, auto& b) {
                q.restore(in);
                b.fold_int8(q, base + node_offset[i]);
                parts.push_back(q.here());
            });
            q.concat(base + node_count - 1, parts);
        }

    private:
        template <class F>
        void for_each_branch(F&& f) {
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                (f(I, std::get<I>(branches_)), ...);
            }
            (std::make_index_sequence<count>{});
        }
        template <class F>
        void for_each_branch(F&& f) const {
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                (f(I, std::get<I>(branches_)), ...);
            }
            (std::make_index_sequence<count>{});
        }
        static std::string join(const std::string& path, std::size_t i) {
            std::string s;
            [&]<std::size_t... I>(std::index_sequence<I...>) {
                ((I == i ? (s = detail::child_name<std::tuple_element_t<I, decls>>(I), 0) : 0), ...);
            }
            (std::make_index_sequence<count>{});
            return detail::join_path(path, s);
        }
        // A branch that is a single leaf reports its input and output itself.
        template <class B>
        static void observe_input(run_context& cx, B&, const float* x, std::size_t n) {
            if constexpr (!composite_layer<B>)
                if (cx.observer) cx.observer->input(cx.layer_index, x, n);
        }
        template <class B>
        static void observe_output(run_context& cx, B&, const float* y, std::size_t n) {
            if constexpr (!composite_layer<B>)
                if (cx.observer) cx.observer->output(cx.layer_index, y, n);
        }

        branches_type branches_;
        transient_buffer<float> dxb_;
        transient_capacity capacity_;
        std::size_t cin_ = In.c;
    };
};

}  // namespace sgp::layers
