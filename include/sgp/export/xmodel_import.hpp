#pragma once
// A quantized XIR graph (written by sgp::xmodel::write, re-written by XIR, or in the same op
// vocabulary by Vitis AI's quantizer) back into a calibrated qmodel, so that int8_target
// computes on the host what the DPU will compute for that file. Supported: data -> fix, conv2d
// with const weights and (optional) bias through fix ops, relu, maxpool2d, each followed by a
// fix. Anything else is refused by name; so is a value that does not sit on its fix point's
// grid (it would not be the DPU's integer) and a conv whose shifts the DPU cannot apply.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/quant/calibrate.hpp"
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
    std::size_t c = m.c, h = m.h, w = m.w;
    // The one op that reads `op` on the main path (null at the end).
    auto next = [&](const sgp::xmodel::pb::OPNode& op) -> const sgp::xmodel::pb::OPNode* {
        const auto it = index.readers.find(op.op_name());
        if (it == index.readers.end()) return nullptr;
        if (it->second.size() > 1)
            fail(where, "op '" + op.op_name() + "' has " + std::to_string(it->second.size()) +
                            " readers: only chains have an int8 form here");
        const auto* r = it->second.front();
        used.insert(r);
        if (producer(*r, "input") != &op)
            fail(where, "op '" + r->op_name() + "' reads '" + op.op_name() + "' other than as its input");
        return r;
    };
    auto unsupported = [&](const sgp::xmodel::pb::OPNode& op) {
        fail(where, "op '" + op.op_name() + "' of type '" + op.op_type() +
                        "' has no int8 form here (supported: data, const, fix, conv2d, relu, maxpool2d)");
    };
    // The fix that must follow `op` (after an optional relu when `relu` is given).
    auto fix_after = [&](const sgp::xmodel::pb::OPNode& op, bool* relu) -> const sgp::xmodel::pb::OPNode& {
        const auto* after = next(op);
        if (relu && after && after->op_type() == "relu") {
            *relu = true;
            after = next(*after);
        }
        if (!after) fail(where, op.op_type() + " '" + op.op_name() + "' has no fix after it (not a quantized graph?)");
        if (after->op_type() != "fix") unsupported(*after);
        return *after;
    };
    const auto* op = next(*data);
    if (!op || op->op_type() != "fix") fail(where, "the input '" + data->op_name() + "' has no fix");
    m.fp_in = fix_point(*op, true);
    int fp = m.fp_in;  // of the activation the main path has reached
    std::size_t order = 0;
    for (op = next(*op); op; op = next(*op)) {
        const std::string& type = op->op_type();
        const auto layer = detail::layer_of(op->op_name(), ++order);
        if (type == "conv2d") {
            const auto k = ints(*op, "kernel", {}), s = ints(*op, "stride", {}), pad = ints(*op, "pad", {0, 0, 0, 0});
            if (op->op_attr().count("group") && op->op_attr().at("group").int32_value() != 1)
                fail(where, "conv2d '" + op->op_name() + "' is grouped: no int8 form here yet");
            if (const auto d = ints(*op, "dilation", {1, 1}); d[0] != 1 || d[1] != 1)
                fail(where, "conv2d '" + op->op_name() + "' is dilated: no int8 form here");
            if (op->op_attr().at("pad_mode").string_value() != "FLOOR")
                fail(where, "conv2d '" + op->op_name() + "': only pad_mode FLOOR is supported");
            const auto& wfix = required(*op, "weights");
            const auto wd = dims(required(wfix, "input"));
            quant::qconv q;
            q.layer = layer;
            q.cout = wd[0];
            // sgp's form of a linear layer after a flatten: an unpadded stride-1 window over the map.
            const bool flattened =
                k[0] == w && k[1] == h && h * w > 1 && pad[0] + pad[1] + pad[2] + pad[3] == 0 && s[0] == 1 && s[1] == 1;
            if (!flattened &&
                (k[0] != k[1] || s[0] != s[1] || pad[0] != pad[1] || pad[0] != pad[2] || pad[0] != pad[3]))
                fail(where,
                     "conv2d '" + op->op_name() + "': only square kernels, strides and even padding are supported");
            std::vector<std::int8_t> ohwi;
            q.fp_w = constant(wfix, ohwi, q.cout * k[0] * k[1] * c);
            if (const auto* bias = producer(*op, "bias")) {
                q.fp_b = constant(*bias, q.qbias, q.cout);
            } else {  // no bias: zeros, at the point where shift_bias is 0 (always within the DPU's limits)
                q.qbias.assign(q.cout, 0);
                q.fp_b = fp + q.fp_w;
            }
            const std::size_t kh = k[1], kw = k[0];
            q.qweight.resize(ohwi.size());
            for (std::size_t o = 0; o < q.cout; ++o)
                for (std::size_t y = 0; y < kh; ++y)
                    for (std::size_t x = 0; x < kw; ++x)
                        for (std::size_t ci = 0; ci < c; ++ci)
                            q.qweight[((o * c + ci) * kh + y) * kw + x] = ohwi[((o * kh + y) * kw + x) * c + ci];
            if (flattened) {
                q.cin = c * h * w, q.k = 1, q.h = q.w = q.oh = q.ow = 1;
            } else {
                q.cin = c, q.k = kw, q.stride = s[0], q.pad = pad[0], q.h = h, q.w = w;
                q.oh = (h + 2 * q.pad - q.k) / q.stride + 1, q.ow = (w + 2 * q.pad - q.k) / q.stride + 1;
            }
            q.weight.resize(q.qweight.size());
            q.bias.resize(q.cout);
            for (std::size_t j = 0; j < q.weight.size(); ++j) q.weight[j] = quant::dequantize(q.qweight[j], q.fp_w);
            for (std::size_t j = 0; j < q.cout; ++j) q.bias[j] = quant::dequantize(q.qbias[j], q.fp_b);
            c = q.cout, h = q.oh, w = q.ow;
            // An optional relu, then the fix that gives the output its fix point.
            const auto* conv_op = op;
            op = &fix_after(*op, &q.relu);
            q.fp_out = fix_point(*op, true);
            quant::checked_shifts(q, fp, where + ": conv2d '" + conv_op->op_name() + "'", m.ops.size());
            fp = q.fp_out;
            m.ops.emplace_back(std::move(q));
        } else if (type == "maxpool2d") {
            const auto k = ints(*op, "kernel", {}), s = ints(*op, "stride", {}), pad = ints(*op, "pad", {0, 0, 0, 0});
            const auto global = op->op_attr().find("global");
            if (k[0] != k[1] || s[0] != s[1] || pad[0] + pad[1] + pad[2] + pad[3] != 0 || k[0] > h || k[0] > w ||
                (global != op->op_attr().end() && global->second.bool_value()) ||
                op->op_attr().at("pad_mode").string_value() != "FLOOR")
                fail(where,
                     "maxpool2d '" + op->op_name() + "': only square, unpadded windows inside the map are supported");
            quant::qmax_pool p;
            p.layer = layer;
            p.c = c, p.h = h, p.w = w, p.k = k[0], p.stride = s[0];
            p.oh = (h - p.k) / p.stride + 1, p.ow = (w - p.k) / p.stride + 1;
            h = p.oh, w = p.ow;
            m.ops.emplace_back(p);
            op = &fix_after(*op, nullptr);
            if (fix_point(*op, true) != fp)
                fail(where, "fix '" + op->op_name() + "' changes the fix point after a max pool");
        } else {
            unsupported(*op);
        }
        const auto d = dims(*op);
        if (d.size() != 4 || d[1] != h || d[2] != w || d[3] != c)
            fail(where, "op '" + op->op_name() + "' declares a shape that its inputs do not give");
    }
    if (m.ops.empty()) fail(where, "the graph has no conv2d or maxpool2d");
    // Nothing may be left over: an op off the main path would be a part of the file the int8
    // model silently leaves out (a second head, say).
    for (const auto& op : g.op_node())
        if (!used.count(&op))
            fail(where, "op '" + op.op_name() + "' of type '" + op.op_type() +
                            "' is not on the chain from the input: only chains have an int8 form here");
    // Layer numbers name the ops when the model is written again: they must be unique.
    std::set<std::size_t> layers;
    bool unique = true;
    for (const auto& q : m.ops)
        unique = unique && layers.insert(std::visit([](const auto& o) { return o.layer; }, q)).second;
    if (!unique)
        for (std::size_t i = 0; i < m.ops.size(); ++i) std::visit([&](auto& o) { o.layer = i + 1; }, m.ops[i]);
    return m;
}

}  // namespace sgp::xmodel
