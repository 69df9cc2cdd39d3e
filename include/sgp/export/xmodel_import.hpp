#pragma once
// A quantized XIR graph (written by sgp::xmodel::write, re-written by XIR, or in the same op
// vocabulary by Vitis AI's quantizer) back into a calibrated qmodel, so that int8_target
// computes on the host what the DPU will compute for that file. Supported: data -> fix;
// conv2d and depthwise-conv2d with const weights and (optional) bias through fix ops, then
// relu or relu6; maxpool2d; avgpool2d (then the quantizer's mul by the DPU's factor); add
// (then relu); concat on channels; each followed by a fix, which may feed several ops (a
// graph, not only a chain). Anything else is refused by name; so is a value that does not sit
// on its fix point's grid (it would not be the DPU's integer) and a fix point that breaks a
// rule of the DPU (a conv's shifts, the eltwise, concat and pooling rules).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/dpu_arithmetic.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::xmodel {

namespace detail {

// The graph as the importer walks it: ops by name, and for each op the ops that read it.
struct graph_index {
    std::map<std::string, const sgp::xmodel::pb::OPNode*> ops;
    std::map<std::string, std::vector<const sgp::xmodel::pb::OPNode*>> readers;
    explicit graph_index(const sgp::xmodel::pb::Graph& g) {
        for (const auto& op : g.op_node()) ops[op.op_name()] = &op;
        for (const auto& op : g.op_node())
            for (const auto& a : op.args())
                for (const auto& p : a.arg_ops()) readers[p].push_back(&op);
    }
};

// The network layer an op comes from, where its name says so as sgp's writer names ops
// ("layer12_conv2d"), so that a file read back and written again keeps its names; else `order`.
inline std::size_t layer_of(const std::string& name, std::size_t order) {
    std::size_t i = 5, n = 0;
    if (name.rfind("layer", 0) != 0) return order;
    for (; i < name.size() && i < 12 && name[i] >= '0' && name[i] <= '9'; ++i)
        n = n * 10 + static_cast<std::size_t>(name[i] - '0');
    return i > 5 && i < name.size() && name[i] == '_' ? n : order;
}

}  // namespace detail

// The qmodel of a graph, whatever order its ops come in (sgp writes the main path in order,
// XIR's writer in a topological order of its own). The main path is followed from the data op
// through each op's single reader; consts are read through the ops that use them.
inline quant::qmodel to_qmodel(const sgp::xmodel::pb::Graph& g, const std::string& where) {
    validate(g, where);
    const detail::graph_index index(g);
    std::set<const sgp::xmodel::pb::OPNode*> used;  // every op the qmodel accounts for
    auto producer = [&](const sgp::xmodel::pb::OPNode& op,
                        const std::string& arg) -> const sgp::xmodel::pb::OPNode* {  // null if absent
        for (const auto& a : op.args())
            if (a.arg_name() == arg) {
                if (a.arg_ops_size() == 0) return nullptr;
                if (a.arg_ops_size() == 1) return index.ops.at(a.arg_ops(0));
            }
        return nullptr;
    };
    auto required = [&](const sgp::xmodel::pb::OPNode& op, const std::string& arg) -> const sgp::xmodel::pb::OPNode& {
        const auto* p = producer(op, arg);
        if (!p) fail(where, "op '" + op.op_name() + "' has no single '" + arg + "' input");
        return *p;
    };
    auto ints = [&](const sgp::xmodel::pb::OPNode& op, const std::string& name, std::vector<int> fallback) {
        const auto it = op.op_attr().find(name);
        std::vector<std::size_t> v;
        if (it == op.op_attr().end()) {
            v.assign(fallback.begin(), fallback.end());
            return v;
        }
        for (int x : it->second.int32_vec().value()) {
            if (x < 0 || x > 4096) fail(where, "op '" + op.op_name() + "': '" + name + "' out of range");
            v.push_back(static_cast<std::size_t>(x));
        }
        return v;
    };
    auto dims = [](const sgp::xmodel::pb::OPNode& op) {
        const auto& d = op.output_tensor().tensor_dim();
        return std::vector<std::size_t>(d.begin(), d.end());
    };
    // A fix's point, after checking it is the DPU's: 8-bit signed, DPU rounding for activations.
    auto fix_point = [&](const sgp::xmodel::pb::OPNode& fix, bool activation) {
        const auto& a = fix.op_attr();
        if (a.at("bit_width").int32_value() != 8 || !a.at("if_signed").bool_value())
            fail(where, "fix '" + fix.op_name() + "' is not signed 8-bit (only int8 has a DPU form here)");
        if (activation && a.at("round_mode").string_value() != "DPU_ROUND")
            fail(where, "fix '" + fix.op_name() + "' rounds with " + a.at("round_mode").string_value() +
                            ", the DPU with DPU_ROUND");
        const int fp = a.at("fix_point").int32_value();
        if (fp < -64 || fp > 64)
            fail(where, "fix '" + fix.op_name() + "' has an implausible fix point " + std::to_string(fp));
        return fp;
    };
    // A const behind a fix: its float32 values as int8 at that fix point.
    auto constant = [&](const sgp::xmodel::pb::OPNode& fix, std::vector<std::int8_t>& q, std::size_t n) {
        if (fix.op_type() != "fix") fail(where, "op '" + fix.op_name() + "' should be a fix of a const");
        const int fp = fix_point(fix, false);
        const auto& c = required(fix, "input");
        used.insert(&fix), used.insert(&c);
        if (c.op_type() != "const") fail(where, "op '" + c.op_name() + "' should be a const");
        const auto type = parse_xir_data_type(c.op_attr().at("data_type").string_value());
        if (!type || type->type != 4 || type->bits != 32)
            fail(where, "const '" + c.op_name() + "' holds " + c.op_attr().at("data_type").string_value() +
                            " values (float32 expected)");
        const auto& bytes = c.op_attr().at("data").bytes_value().value();
        if (bytes.size() != 4 * n)
            fail(where, "const '" + c.op_name() + "' does not hold " + std::to_string(n) + " float32");
        q.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            std::uint32_t u = 0;
            for (int b = 0; b < 4; ++b)
                u |= std::uint32_t{static_cast<unsigned char>(bytes[4 * i + static_cast<std::size_t>(b)])} << (8 * b);
            const double v = std::ldexp(static_cast<double>(std::bit_cast<float>(u)), fp);
            if (!(v >= quant::qmin && v <= quant::qmax) || v != std::floor(v))
                fail(where, "const '" + c.op_name() + "' value " + std::to_string(i) + " is not an int8 at fix point " +
                                std::to_string(fp));
            q[i] = static_cast<std::int8_t>(v);
        }
        return fp;
    };

    const sgp::xmodel::pb::OPNode* data = nullptr;
    for (const auto& op : g.op_node())
        if (op.op_type() == "data") {
            if (data) fail(where, "the graph has two inputs ('" + data->op_name() + "', '" + op.op_name() + "')");
            data = &op;
        }
    if (!data || dims(*data).size() != 4 || dims(*data)[0] != 1)
        fail(where, "the graph has no input (data, [1,H,W,C])");
    quant::qmodel m;
    if (const auto t = parse_xir_data_type(data->op_attr().at("data_type").string_value());
        !t || t->type != 4 || t->bits != 32)
        fail(where, "the input '" + data->op_name() + "' is not float32 (the DPU's input is scaled from floats)");
    m.h = dims(*data)[1], m.w = dims(*data)[2], m.c = dims(*data)[3];
    used.insert(data);
    auto unsupported = [&](const sgp::xmodel::pb::OPNode& op) {
        fail(where, "op '" + op.op_name() + "' of type '" + op.op_type() +
                        "' has no int8 form here (supported: data, const, fix, conv2d, depthwise-conv2d, relu, relu6, "
                        "maxpool2d, avgpool2d [-> mul], add, concat)");
    };
    // The one op that reads `op` (an op between a computation and its fix has one reader).
    auto sole_reader = [&](const sgp::xmodel::pb::OPNode& op) -> const sgp::xmodel::pb::OPNode* {
        const auto it = index.readers.find(op.op_name());
        if (it == index.readers.end()) return nullptr;
        if (it->second.size() > 1)
            fail(where, "op '" + op.op_name() + "' has " + std::to_string(it->second.size()) +
                            " readers: only a fix may feed several ops");
        const auto* r = it->second.front();
        bool as_input = false;  // (a mul reads the pool and its const, both as `input`)
        for (const auto& a : r->args())
            for (const auto& p : a.arg_ops()) as_input = as_input || (a.arg_name() == "input" && p == op.op_name());
        if (!as_input) fail(where, "op '" + r->op_name() + "' reads '" + op.op_name() + "' other than as its input");
        return r;
    };
    // The fix that must follow `op`, after the ops `then` allows (each consumed by `then`).
    auto fix_after = [&](const sgp::xmodel::pb::OPNode& op, auto&& then) -> const sgp::xmodel::pb::OPNode& {
        const auto* after = sole_reader(op);
        while (after && after->op_type() != "fix" && then(*after)) {
            used.insert(after);
            after = sole_reader(*after);
        }
        if (!after) fail(where, op.op_type() + " '" + op.op_name() + "' has no fix after it (not a quantized graph?)");
        if (after->op_type() != "fix") unsupported(*after);
        used.insert(after);
        return *after;
    };
    const auto* input_fix = sole_reader(*data);
    if (!input_fix || input_fix->op_type() != "fix") fail(where, "the input '" + data->op_name() + "' has no fix");
    used.insert(input_fix);
    m.fp_in = fix_point(*input_fix, true);
    std::map<std::string, std::size_t> tensor_of;  // activation fix op -> qmodel tensor
    tensor_of[input_fix->op_name()] = 0;
    // The tensors an op reads through its argument `arg` (one or, for add / concat, several),
    // or nothing while one of them is not computed yet.
    auto inputs_of = [&](const sgp::xmodel::pb::OPNode& op) -> std::optional<std::vector<std::size_t>> {
        std::vector<std::size_t> t;
        for (const auto& a : op.args())
            if (a.arg_name() == "input")
                for (const auto& p : a.arg_ops()) {
                    const auto it = tensor_of.find(p);
                    if (it == tensor_of.end()) return std::nullopt;
                    t.push_back(it->second);
                }
        if (t.empty()) return std::nullopt;
        return t;
    };
    auto square = [&](const sgp::xmodel::pb::OPNode& op, const std::vector<std::size_t>& k,
                      const std::vector<std::size_t>& s, const std::vector<std::size_t>& pad) {
        if (k.size() != 2 || s.size() != 2 || pad.size() != 4 || k[0] != k[1] || s[0] != s[1] || pad[0] != pad[1] ||
            pad[0] != pad[2] || pad[0] != pad[3])
            fail(where,
                 op.op_type() + " '" + op.op_name() + "': only square kernels, strides and even padding are supported");
    };
    // The activation fused before a fix (relu, or relu6 where `relu6`), set into `act`.
    auto activation_after = [](quant::activation& act, bool relu6) {
        return [&act, relu6](const sgp::xmodel::pb::OPNode& r) {
            if (act != quant::activation::none) return false;
            if (r.op_type() == "relu")
                act = quant::activation::relu;
            else if (relu6 && r.op_type() == "relu6")
                act = quant::activation::relu6;
            else
                return false;
            return true;
        };
    };
    // A conv2d or depthwise-conv2d: weights (OHWI, or [1, kh, kw, C]) and bias through fixes.
    auto conv = [&](const sgp::xmodel::pb::OPNode& op, const quant::tensor_dims in, bool depthwise,
                    const sgp::xmodel::pb::OPNode*& fix) {
        const auto k = ints(op, "kernel", {}), s = ints(op, "stride", {}), pad = ints(op, "pad", {0, 0, 0, 0});
        if (!depthwise && op.op_attr().count("group") && op.op_attr().at("group").int32_value() != 1)
            fail(where, "conv2d '" + op.op_name() + "' is grouped: only depthwise-conv2d has an int8 form here");
        if (const auto d = ints(op, "dilation", {1, 1}); d.size() != 2 || d[0] != 1 || d[1] != 1)
            fail(where, op.op_type() + " '" + op.op_name() + "' is dilated: no int8 form here");
        if (op.op_attr().at("pad_mode").string_value() != "FLOOR")
            fail(where, op.op_type() + " '" + op.op_name() + "': only pad_mode FLOOR is supported");
        if (k.size() != 2 || s.size() != 2 || pad.size() != 4)
            fail(where, op.op_type() + " '" + op.op_name() + "': kernel, stride or pad of the wrong length");
        const auto& wfix = required(op, "weights");
        const auto wd = dims(required(wfix, "input"));
        if (wd.size() != 4) fail(where, op.op_type() + " '" + op.op_name() + "': weights are not 4-d");
        quant::qconv q;
        // sgp's form of a linear layer after a flatten: an unpadded stride-1 window over the map.
        const bool flattened = !depthwise && k[0] == in.w && k[1] == in.h && in.h * in.w > 1 &&
                               pad[0] + pad[1] + pad[2] + pad[3] == 0 && s[0] == 1 && s[1] == 1;
        if (!flattened) square(op, k, s, pad);
        const std::size_t kh = k[1], kw = k[0];
        if (depthwise) {
            if (wd[0] != 1 || wd[1] != kh || wd[2] != kw || wd[3] != in.c)
                fail(where, "depthwise-conv2d '" + op.op_name() +
                                "': weights are not [1, kh, kw, C] (a channel "
                                "multiplier above 1 has no int8 form here)");
            q.cout = in.c, q.groups = in.c;
        } else {
            if (wd[1] != kh || wd[2] != kw || wd[3] != in.c)
                fail(where, "conv2d '" + op.op_name() + "': weights are not [oc, kh, kw, ic] for its input");
            q.cout = wd[0];
        }
        const std::size_t per_out = depthwise ? 1 : in.c;  // input channels per output
        std::vector<std::int8_t> ohwi;
        q.fp_w = constant(wfix, ohwi, wd[0] * kh * kw * wd[3]);
        const int fp_in = m.fix_point(*inputs_of(op)->begin());
        if (const auto* bias = producer(op, "bias")) {
            q.fp_b = constant(*bias, q.qbias, q.cout);
        } else {  // no bias: zeros, at the point where shift_bias is 0 (always within the DPU's limits)
            q.qbias.assign(q.cout, 0);
            q.fp_b = fp_in + q.fp_w;
        }
        q.qweight.resize(ohwi.size());
        for (std::size_t o = 0; o < q.cout; ++o)
            for (std::size_t y = 0; y < kh; ++y)
                for (std::size_t x = 0; x < kw; ++x)
                    for (std::size_t ci = 0; ci < per_out; ++ci)
                        q.qweight[((o * per_out + ci) * kh + y) * kw + x] =
                            depthwise ? ohwi[(y * kw + x) * in.c + o] : ohwi[((o * kh + y) * kw + x) * in.c + ci];
        if (flattened) {
            q.cin = in.size(), q.k = 1, q.h = q.w = q.oh = q.ow = 1;
        } else {
            q.cin = in.c, q.k = kw, q.stride = s[0], q.pad = pad[0], q.h = in.h, q.w = in.w;
            if (in.h + 2 * q.pad < q.k || in.w + 2 * q.pad < q.k || q.stride == 0)
                fail(where, op.op_type() + " '" + op.op_name() + "': the kernel does not fit the padded map");
            q.oh = (in.h + 2 * q.pad - q.k) / q.stride + 1, q.ow = (in.w + 2 * q.pad - q.k) / q.stride + 1;
        }
        q.weight.resize(q.qweight.size());
        q.bias.resize(q.cout);
        for (std::size_t j = 0; j < q.weight.size(); ++j) q.weight[j] = quant::dequantize(q.qweight[j], q.fp_w);
        for (std::size_t j = 0; j < q.cout; ++j) q.bias[j] = quant::dequantize(q.qbias[j], q.fp_b);
        fix = &fix_after(op, activation_after(q.act, true));
        q.fp_out = fix_point(*fix, true);
        quant::checked_shifts(q, fp_in, where + ": " + op.op_type() + " '" + op.op_name() + "'", m.ops.size());
        return q;
    };
    auto pool_window = [&](const sgp::xmodel::pb::OPNode& op, const quant::tensor_dims in, auto p) {
        auto k = ints(op, "kernel", {}), s = ints(op, "stride", {});
        const auto pad = ints(op, "pad", {0, 0, 0, 0});
        const auto global = op.op_attr().find("global");
        if (global != op.op_attr().end() && global->second.bool_value()) k = {in.w, in.h}, s = {1, 1};
        square(op, k, s, pad);
        if (pad[0] != 0 || k[0] == 0 || s[0] == 0 || k[0] > in.h || k[0] > in.w ||
            op.op_attr().at("pad_mode").string_value() != "FLOOR")
            fail(where,
                 op.op_type() + " '" + op.op_name() + "': only square, unpadded windows inside the map are supported");
        p.c = in.c, p.h = in.h, p.w = in.w, p.k = k[0], p.stride = s[0];
        p.oh = (in.h - p.k) / p.stride + 1, p.ow = (in.w - p.k) / p.stride + 1;
        return p;
    };

    std::size_t order = 0;
    for (bool progress = true; progress;) {
        progress = false;
        for (const auto& node : g.op_node()) {
            const std::string& type = node.op_type();
            if (used.count(&node) || type == "fix" || type == "const" || type == "data") continue;
            const auto in = inputs_of(node);
            if (!in) continue;  // its inputs come later in the file
            used.insert(&node);
            progress = true;
            const auto dims_in = m.dims(in->front());
            const auto layer = detail::layer_of(node.op_name(), ++order);
            const sgp::xmodel::pb::OPNode* fix = nullptr;
            auto fix_of = [&](auto&& then) {
                fix = &fix_after(node, then);
                return fix_point(*fix, true);
            };
            auto none = [](const sgp::xmodel::pb::OPNode&) { return false; };
            if (type == "conv2d" || type == "depthwise-conv2d") {
                auto q = conv(node, dims_in, type == "depthwise-conv2d", fix);
                q.layer = layer;
                m.add(std::move(q), *in);
            } else if (type == "maxpool2d") {
                auto p = pool_window(node, dims_in, quant::qmax_pool{});
                p.layer = layer;
                p.fp_out = fix_of(none);
                m.add(std::move(p), *in);
            } else if (type == "avgpool2d") {
                auto p = pool_window(node, dims_in, quant::qavg_pool{});
                p.layer = layer;
                // Vitis AI's quantizer writes the DPU's factor as a mul by a const after the
                // pool (kh kw N / 2^M); sgp's writer too. Any other factor is not the DPU's.
                p.fp_out = fix_of([&](const sgp::xmodel::pb::OPNode& r) {
                    if (r.op_type() != "mul") return false;
                    const auto s = quant::dpu::avg_pool_scale(p.k, p.k);
                    const double want = static_cast<double>(p.k * p.k * s.n) / std::ldexp(1.0, s.m);
                    const sgp::xmodel::pb::OPNode* c = nullptr;
                    for (const auto& a : r.args())
                        for (const auto& name : a.arg_ops())
                            if (name != node.op_name()) c = index.ops.at(name);
                    if (!c || c->op_type() != "const" || c->op_attr().at("data").bytes_value().value().size() != 4)
                        fail(where, "mul '" + r.op_name() + "' after avgpool2d '" + node.op_name() +
                                        "' does not multiply by one const");
                    used.insert(c);
                    std::uint32_t u = 0;
                    const auto& b = c->op_attr().at("data").bytes_value().value();
                    for (int i = 0; i < 4; ++i)
                        u |= std::uint32_t{static_cast<unsigned char>(b[static_cast<std::size_t>(i)])} << (8 * i);
                    if (std::abs(static_cast<double>(std::bit_cast<float>(u)) - want) > 1e-6 * want)
                        fail(where, "mul '" + r.op_name() + "' scales the average by " +
                                        std::to_string(std::bit_cast<float>(u)) + ", the DPU by " +
                                        std::to_string(want));
                    return true;
                });
                m.add(std::move(p), *in);
            } else if (type == "add") {
                quant::qadd a;
                a.layer = layer;
                a.c = dims_in.c, a.h = dims_in.h, a.w = dims_in.w;
                a.fp_out = fix_of(activation_after(a.act, false));
                m.add(std::move(a), *in);
            } else if (type == "concat") {
                const auto axis = node.op_attr().find("axis");
                if (axis == node.op_attr().end() ||
                    (axis->second.int32_value() != 3 && axis->second.int32_value() != -1))
                    fail(where, "concat '" + node.op_name() + "': only channels (axis 3 of NHWC) are supported");
                quant::qconcat k;
                k.layer = layer;
                for (auto t : *in) k.channels.push_back(m.dims(t).c);
                k.h = dims_in.h, k.w = dims_in.w;
                k.fp_out = fix_of(none);
                m.add(std::move(k), *in);
            } else {
                unsupported(node);
            }
            const auto d = dims(*fix);
            const auto out = m.dims(m.output_tensor());
            if (d.size() != 4 || d[1] != out.h || d[2] != out.w || d[3] != out.c)
                fail(where, "op '" + fix->op_name() + "' declares a shape that its inputs do not give");
            quant::check_fix_rules(m, m.ops.size() - 1, where);  // here, before a consumer's shifts
            tensor_of[fix->op_name()] = m.output_tensor();
        }
    }
    if (m.ops.empty()) fail(where, "the graph has no operation after its input");
    quant::validate(m, where);  // once: each op's shape was checked against its fix as it came
    // Nothing may be left over: an op not reached from the input would be a part of the file
    // the int8 model silently leaves out; so would a second output.
    for (const auto& op : g.op_node())
        if (!used.count(&op))
            fail(where, "op '" + op.op_name() + "' of type '" + op.op_type() +
                            "' is not on the graph from the input to the output");
    for (const auto& [name, t] : tensor_of)
        if (t != m.output_tensor() && !index.readers.count(name))
            fail(where, "fix '" + name + "' is a second output: only single-output graphs have an int8 form here");
    // Layer numbers name the ops when the model is written again: they must be unique.
    std::set<std::size_t> layers;
    bool unique = true;
    for (const auto& q : m.ops) unique = unique && layers.insert(quant::base_of(q).layer).second;
    if (!unique)
        for (std::size_t i = 0; i < m.ops.size(); ++i) quant::base_of(m.ops[i]).layer = i + 1;
    return m;
}

}  // namespace sgp::xmodel
