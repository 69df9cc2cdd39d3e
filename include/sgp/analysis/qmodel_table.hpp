#pragma once
// The layer table of an int8 model (quant/qmodel.hpp) alone, one row per op: for a model read
// from an .xmodel, where no float network stands behind it. A conv op is a conv2d-fix (or a
// depthwise-conv2d-fix) with its batch norm folded and its activation fused (a linear layer
// is one over its flattened map); pools, adds and concats are their *-fix ops.
#include <cstddef>
#include <string>
#include <variant>

#include "sgp/analysis/layer_table.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::analysis {

inline layer_table table_of(const quant::qmodel& m) {
    quant::validate(m, "analysis::table_of");
    layer_table t;
    t.input = shape{m.c, m.h, m.w, false};
    auto map_of = [&](std::size_t tensor) {
        const auto d = m.dims(tensor);
        return shape{d.c, d.h, d.w, false};
    };
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        const auto& inputs = quant::base_of(m.ops[i]).inputs;
        layer_row r;
        r.id = i;
        r.path = std::to_string(i);
        r.in = map_of(inputs[0]);
        for (auto tensor : inputs) r.reads.push_back(tensor == 0 ? graph::no_node : tensor - 1);
        r.out = map_of(i + 1);
        const auto pool = [&](const auto& p, std::string_view kind) {
            r.kind = kind;
            r.role = channel_role::passes;
            r.windowed = true;
            r.kernel = p.k, r.stride = p.stride;
        };
        std::visit(quant::overloaded{[&](const quant::qconv& c) {
                                         const auto win =
                                             quant::window_of(c, r.in.c, r.in.h, r.in.w, "analysis::table_of", i);
                                         r.kind = c.depthwise() ? "depthwise-conv2d-fix" : "conv2d-fix";
                                         r.role = c.depthwise() ? channel_role::follows : channel_role::produces;
                                         r.windowed = true;
                                         r.kernel = win.kh, r.stride = win.stride, r.padding = win.pad;
                                         if (win.flattened) r.in = shape{r.in.size(), 1, 1, true}, r.kernel = 1;
                                         r.at = cost{c.weight.size() + c.bias.size(), c.weight.size() * c.oh * c.ow};
                                     },
                                     [&](const quant::qmax_pool& p) { pool(p, "maxpool2d-fix"); },
                                     [&](const quant::qavg_pool& p) { pool(p, "avgpool2d-fix"); },
                                     [&](const quant::qadd&) {
                                         r.kind = "eltwise-fix";
                                         r.type = graph::node_type::add;  // the elementwise engine
                                         r.role = channel_role::passes;
                                     },
                                     [&](const quant::qconcat&) {
                                         r.kind = "concat-fix";
                                         r.type = graph::node_type::concat;
                                         r.role = channel_role::passes;
                                     }},
                   m.ops[i]);
        r.declared_in = r.in.c, r.declared_out = r.out.c;
        t.total += r.at;
        t.rows.push_back(std::move(r));
    }
    compute_liveness(t);
    return t;
}

}  // namespace sgp::analysis
