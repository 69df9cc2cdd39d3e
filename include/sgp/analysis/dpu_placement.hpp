#pragma once
// Before export: for each op of an int8 model, whether a DPUCZDX8G would run it, or why it
// falls back to the CPU (which splits the compiled graph into several DPU subgraphs, each with
// a round trip through the host). The limits are the compiler's description of each DPU size
// and the quantizer's checks (sources as in analysis/dpu_model.hpp):
// - conv engine [TF]: kernel 1-16, stride 1-8, ReLU / ReLU6 / LeakyReLU fused; padding at most
//   the kernel less one per side (UG1414, conv2d: pad in [0, (k - 1) dilation]); the input-size
//   rule kw kh ceil(ic / ICP) <= bank depth [TF2]; oc <= 256 OCP [TF2]; ic <= 256 channel
//   parallelism ([NNDCT] check_load_jump_write);
// - ALU [TF] (depthwise conv, average and max pools): kernel 1-256, stride 1-256, padding
//   left / top 0-15 and right / bottom 0-255, ReLU / ReLU6 fused; depthwise taps within the
//   weights bank [NNDCT];
// - eltwise engine [TF]: add (and mul), ReLU only;
// - concat: resolved by the compiler (inputs written side by side), no engine.
// The activations a qmodel can hold (ReLU, ReLU6 on convs; ReLU on adds) are all supported by
// the engine that runs them, so only windows, paddings and sizes can send an op to the CPU.
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "sgp/analysis/dpu_mapping.hpp"
#include "sgp/analysis/dpu_model.hpp"
#include "sgp/analysis/qmodel_table.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::analysis {

struct op_placement {
    std::size_t op = 0;
    std::string kind;    // the XIR op
    std::string engine;  // conv, depthwise (ALU), pool (ALU), eltwise, none
    bool on_dpu = true;
    std::string why;  // the broken limits, when not on the DPU
};

struct placement {
    std::string dpu;  // the DPU size checked against
    std::vector<op_placement> ops;
    std::size_t cpu_ops() const {
        std::size_t n = 0;
        for (const auto& o : ops) n += !o.on_dpu;
        return n;
    }
    // DPU subgraphs after partitioning: runs of DPU ops between CPU ops, in the order the model
    // runs them (a CPU op in a branch still cuts the graph there).
    std::size_t dpu_subgraphs() const {
        std::size_t n = 0;
        bool in_run = false;
        for (const auto& o : ops) {
            if (o.on_dpu && !in_run) ++n;
            in_run = o.on_dpu;
        }
        return n;
    }
};

inline placement place(const quant::qmodel& m, const dpu_config& c = dpu_size("B4096")) {
    const auto table = table_of(m);
    placement p;
    p.dpu = c.name;
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        op_placement o;
        o.op = i;
        o.kind = std::string(table.rows[i].kind);
        auto refuse = [&](const std::string& why) {
            o.on_dpu = false;
            o.why += (o.why.empty() ? "" : "; ") + why;
        };
        const auto work = dpu_work_of(table.rows[i]);
        o.engine = std::string(engine_name(work.engine));
        if (work.engine != dpu_engine::none) {
            const auto e = estimate(work, c);
            if (!e.fits) refuse(e.why);
        }
        const std::size_t cp_channels = 256 * c.icp;
        std::visit(quant::overloaded{
                       [&](const quant::qconv& q) {
                           if (work.ic > cp_channels && !q.depthwise())
                               refuse("ic " + std::to_string(work.ic) + " > 256*ICP = " + std::to_string(cp_channels));
                           if (q.depthwise()) {
                               if (q.pad > 15)
                                   refuse("pad " + std::to_string(q.pad) + " > the ALU's 15 on the left and top");
                           } else if (q.pad + 1 > q.k && !table.rows[i].in.flat) {
                               refuse("pad " + std::to_string(q.pad) + " > kernel - 1 = " + std::to_string(q.k - 1));
                           }
                       },
                       // Pools: the ALU's window limits (estimate above), no padding in a qmodel.
                       [&](const quant::qmax_pool&) {}, [&](const quant::qavg_pool&) {},
                       // The eltwise engine takes any number of inputs and fuses ReLU, the only
                       // activation a qadd can carry.
                       [&](const quant::qadd&) {},
                       [&](const quant::qconcat&) { o.engine = "none (the compiler places its inputs side by side)"; }},
                   m.ops[i]);
        p.ops.push_back(std::move(o));
    }
    return p;
}

inline void print_placement(const placement& p, std::ostream& out) {
    out << "DPU placement (" << p.dpu << "): " << p.ops.size() - p.cpu_ops() << " of " << p.ops.size()
        << " ops on the DPU, " << p.dpu_subgraphs() << " DPU subgraph" << (p.dpu_subgraphs() == 1 ? "" : "s") << "\n";
    for (const auto& o : p.ops)
        if (!o.on_dpu) out << "  op " << o.op << " (" << o.kind << ") runs on the CPU: " << o.why << "\n";
}

}  // namespace sgp::analysis
