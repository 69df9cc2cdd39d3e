#pragma once
// A quantized XIR graph (written by sgp::xmodel::write, or in the same op vocabulary by Vitis
// AI's quantizer) back into a calibrated qmodel, so that int8_target computes on the host what
// the DPU will compute for that file. Supported: data -> fix, conv2d with const weights and
// bias through fix ops, relu, maxpool2d, each followed by a fix. Anything else is refused by
// name; a value that does not sit on its fix point's grid is refused too (it would not be the
// DPU's integer).
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::xmodel {

inline quant::qmodel to_qmodel(const sgp::xmodel::pb::Graph& g, const std::string& where) {
    validate(g, where);
    std::map<std::string, const sgp::xmodel::pb::OPNode*> ops;
    for (const auto& op : g.op_node()) ops[op.op_name()] = &op;
    auto producer = [&](const sgp::xmodel::pb::OPNode& op, const std::string& arg) -> const sgp::xmodel::pb::OPNode& {
        for (const auto& a : op.args())
            if (a.arg_name() == arg && a.arg_ops_size() == 1) return *ops.at(a.arg_ops(0));
        fail(where, "op '" + op.op_name() + "' has no single '" + arg + "' input");
    };
    auto int_attr = [&](const sgp::xmodel::pb::OPNode& op, const std::string& name) {
        const auto it = op.op_attr().find(name);
        if (it == op.op_attr().end() || it->second.value_case() != sgp::xmodel::pb::AttrValue::kInt32Value)
            fail(where, "op '" + op.op_name() + "' has no int32 attribute '" + name + "'");
        return it->second.int32_value();
    };
    auto ints = [&](const sgp::xmodel::pb::OPNode& op, const std::string& name, int n) {
        const auto it = op.op_attr().find(name);
        if (it == op.op_attr().end() || it->second.value_case() != sgp::xmodel::pb::AttrValue::kInt32Vec ||
            it->second.int32_vec().value_size() != n)
            fail(where, "op '" + op.op_name() + "' has no int32 vector '" + name + "' of " + std::to_string(n));
        std::vector<std::size_t> v;
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
    // A const behind a fix: its values as int8 at that fix point.
    auto constant = [&](const sgp::xmodel::pb::OPNode& fix, std::vector<std::int8_t>& q, std::size_t n) {
        if (fix.op_type() != "fix") fail(where, "op '" + fix.op_name() + "' should be a fix of a const");
        const int fp = int_attr(fix, "fix_point");
        const auto& c = producer(fix, "input");
        if (c.op_type() != "const") fail(where, "op '" + c.op_name() + "' should be a const");
        const auto& bytes = c.op_attr().at("data").bytes_value();
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

    quant::qmodel m;
    const auto& first = g.op_node(0);
    if (first.op_type() != "data" || dims(first).size() != 4 || dims(first)[0] != 1)
        fail(where, "the first op should be the input (data, [1,H,W,C])");
    m.h = dims(first)[1], m.w = dims(first)[2], m.c = dims(first)[3];
    std::size_t c = m.c, h = m.h, w = m.w;
    std::string last = first.op_name();
    bool have_fix = false, need_fix = true;  // every op's output goes through a fix
    // Ops in file order; consts and their fixes are read through the conv that uses them.
    for (int i = 1; i < g.op_node_size(); ++i) {
        const auto& op = g.op_node(i);
        const std::string& type = op.op_type();
        if (type == "const" || (type == "fix" && producer(op, "input").op_type() == "const")) continue;
        if (type != "fix" && type != "conv2d" && type != "relu" && type != "maxpool2d")
            fail(where, "op '" + op.op_name() + "' of type '" + type +
                            "' has no int8 form here (supported: data, const, fix, conv2d, relu, maxpool2d)");
        if (type != "fix" && type != "relu" && need_fix)
            fail(where, "op '" + op.op_name() + "' reads '" + last + "', which has no fix (not a quantized graph?)");
        need_fix = type != "fix";
        if (type == "fix") {
            if (producer(op, "input").op_name() != last) fail(where, "fix '" + op.op_name() + "' is off the main path");
            const int fp = int_attr(op, "fix_point");
            if (!have_fix) {
                m.fp_in = fp;
                have_fix = true;
            } else if (!m.ops.empty()) {
                if (auto* q = std::get_if<quant::qconv>(&m.ops.back()))
                    q->fp_out = fp;
                else if (fp != m.fp_after(m.ops.size() - 1))
                    fail(where, "fix '" + op.op_name() + "' changes the fix point after a max pool");
            }
            last = op.op_name();
        } else if (type == "conv2d") {
            if (producer(op, "input").op_name() != last)
                fail(where, "conv2d '" + op.op_name() + "' is off the main path");
            const auto k = ints(op, "kernel", 2), s = ints(op, "stride", 2), pad = ints(op, "pad", 4);
            const auto& wfix = producer(op, "weights");
            const auto wd = dims(producer(wfix, "input"));
            if (wd.size() != 4 || wd[1] != k[1] || wd[2] != k[0] || wd[3] != c)
                fail(where, "conv2d '" + op.op_name() + "': weights are not [oc, kh, kw, " + std::to_string(c) + "]");
            quant::qconv q;
            q.layer = static_cast<std::size_t>(i);
            q.cout = wd[0];
            const bool flattened = k[0] == w && k[1] == h && h * w > 1 && pad[0] + pad[1] + pad[2] + pad[3] == 0;
            if (!flattened &&
                (k[0] != k[1] || s[0] != s[1] || pad[0] != pad[1] || pad[0] != pad[2] || pad[0] != pad[3]))
                fail(where,
                     "conv2d '" + op.op_name() + "': only square kernels, strides and even padding are supported");
            std::vector<std::int8_t> ohwi;
            q.fp_w = constant(wfix, ohwi, q.cout * k[0] * k[1] * c);
            q.fp_b = constant(producer(op, "bias"), q.qbias, q.cout);
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
                if (q.stride == 0 || h + 2 * q.pad < q.k || w + 2 * q.pad < q.k)
                    fail(where, "conv2d '" + op.op_name() + "': kernel larger than the padded map, or stride 0");
                q.oh = (h + 2 * q.pad - q.k) / q.stride + 1, q.ow = (w + 2 * q.pad - q.k) / q.stride + 1;
            }
            q.weight.resize(q.qweight.size());
            q.bias.resize(q.cout);
            for (std::size_t j = 0; j < q.weight.size(); ++j) q.weight[j] = quant::dequantize(q.qweight[j], q.fp_w);
            for (std::size_t j = 0; j < q.cout; ++j) q.bias[j] = quant::dequantize(q.qbias[j], q.fp_b);
            c = q.cout, h = q.oh, w = q.ow;
            m.ops.emplace_back(std::move(q));
            last = op.op_name();
        } else if (type == "relu") {
            if (producer(op, "input").op_name() != last || m.ops.empty() ||
                !std::holds_alternative<quant::qconv>(m.ops.back()))
                fail(where, "relu '" + op.op_name() + "' does not follow a conv2d");
            std::get<quant::qconv>(m.ops.back()).relu = true;
            last = op.op_name();
        } else {  // maxpool2d
            if (producer(op, "input").op_name() != last)
                fail(where, "maxpool2d '" + op.op_name() + "' is off the main path");
            const auto k = ints(op, "kernel", 2), s = ints(op, "stride", 2), pad = ints(op, "pad", 4);
            if (k[0] != k[1] || s[0] != s[1] || pad[0] + pad[1] + pad[2] + pad[3] != 0 || s[0] == 0 || k[0] > h ||
                k[0] > w)
                fail(where,
                     "maxpool2d '" + op.op_name() + "': only square, unpadded windows inside the map are supported");
            quant::qmax_pool p;
            p.layer = static_cast<std::size_t>(i);
            p.c = c, p.h = h, p.w = w, p.k = k[0], p.stride = s[0];
            p.oh = (h - p.k) / p.stride + 1, p.ow = (w - p.k) / p.stride + 1;
            h = p.oh, w = p.ow;
            m.ops.emplace_back(p);
            last = op.op_name();
        }
        const auto d = dims(op);
        if (type != "fix" && (d.size() != 4 || d[1] != h || d[2] != w || d[3] != c))
            fail(where, "op '" + op.op_name() + "' declares a shape that its inputs do not give");
    }
    if (m.ops.empty()) fail(where, "the graph has no conv2d or maxpool2d");
    if (need_fix) fail(where, "the last op '" + last + "' has no fix");
    return m;
}

}  // namespace sgp::xmodel
