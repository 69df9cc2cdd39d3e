#pragma once
// The layer table of an int8 model (quant/qmodel.hpp) alone, one row per op: for a model read
// from an .xmodel, where no float network stands behind it. A conv op is a conv2d-fix with its
// batch norm folded and its ReLU fused (a linear layer is one over its flattened map), a pool
// a maxpool2d-fix.
#include <cstddef>
#include <string>
#include <type_traits>
#include <variant>

#include "sgp/analysis/layer_table.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::analysis {

inline layer_table table_of(const quant::qmodel& m) {
    layer_table t;
    t.input = shape{m.c, m.h, m.w, false};
    shape at = t.input;
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        layer_row r;
        r.id = i;
        r.path = std::to_string(i);
        r.in = at;
        r.reads = {i == 0 ? graph::no_node : i - 1};
        r.windowed = true;
        std::visit(
            [&](const auto& op) {
                using T = std::decay_t<decltype(op)>;
                if constexpr (std::is_same_v<T, quant::qconv>) {
                    const auto win = quant::window_of(op, at.c, at.h, at.w, "analysis::table_of", i);
                    r.kind = "conv2d-fix";
                    r.role = channel_role::produces;
                    r.out = shape{op.cout, op.oh, op.ow, false};
                    r.kernel = win.kh, r.stride = win.stride, r.padding = win.pad;
                    if (win.flattened) r.in = shape{at.size(), 1, 1, true}, r.kernel = 1;
                    r.at = cost{op.weight.size() + op.bias.size(), op.weight.size() * op.oh * op.ow};
                } else {
                    r.kind = "maxpool2d-fix";
                    r.role = channel_role::passes;
                    r.out = shape{op.c, op.oh, op.ow, false};
                    r.kernel = op.k, r.stride = op.stride;
                }
            },
            m.ops[i]);
        r.declared_in = r.in.c, r.declared_out = r.out.c;
        at = r.out;
        t.total += r.at;
        t.rows.push_back(std::move(r));
    }
    compute_liveness(t);
    return t;
}

}  // namespace sgp::analysis
