#pragma once
// Which DPU engine would run a row of the layer table, and on what sizes: the facts the DPU
// cost model (analysis/dpu_model.hpp) takes. Read from what the layers state about themselves
// (their channel role, window and cost), not from kind names:
//   produces channels (conv2d, linear)          -> the conv engine (a linear layer as a 1x1
//                                                  convolution of its features, as the int8 model runs it)
//   follows with multiply-adds (depthwise conv) -> the depthwise engine
//   a window, no parameters (max / avg pools)   -> the pooling engine
//   a residual add                              -> the elementwise engine (two int8 inputs)
//   everything else (batch norm and ReLU fused into the conv before, flatten, dropout, a
//   concat the compiler resolves by placing its inputs side by side) costs nothing.
#include <cstddef>

#include "sgp/analysis/dpu_model.hpp"
#include "sgp/analysis/layer_table.hpp"

namespace sgp::analysis {

inline dpu_work dpu_work_of(const layer_row& r) {
    dpu_work w;
    w.ic = r.in.c, w.oc = r.out.c;
    w.ih = r.in.h, w.iw = r.in.w, w.oh = r.out.h, w.ow = r.out.w;
    w.kh = w.kw = r.kernel;
    w.stride = r.stride;
    w.macs = r.at.macs;
    if (r.type == graph::node_type::add) {
        w.engine = dpu_engine::eltwise;
        w.in_bytes = 2 * r.out_elements();
        w.out_bytes = r.out_elements();
        w.macs = r.out_elements();  // the model counts an elementwise engine's work in outputs
        return w;
    }
    if (r.type != graph::node_type::leaf) return w;
    if (r.role == channel_role::produces)
        w.engine = dpu_engine::conv;
    else if (r.role == channel_role::follows && r.at.macs > 0)
        w.engine = dpu_engine::depthwise;
    else if (r.windowed && r.at.parameters == 0) {
        w.engine = dpu_engine::pool;
        w.macs = r.out_elements() * r.kernel * r.kernel;  // a pool's work in window taps
    } else
        return w;
    w.weight_bytes = r.weight_bytes_int8();
    w.in_bytes = r.in_elements();
    w.out_bytes = r.out_elements();
    return w;
}

}  // namespace sgp::analysis
