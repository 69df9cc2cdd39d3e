#pragma once
// A calibrated qmodel as a quantized XIR graph (.xmodel), the form Vitis AI's quantizer hands
// to the compiler (vai_c_xir): float ops plus `fix` ops that carry the fix points; NHWC
// activations, OHWI weights; every attribute with the type XIR's op registry expects.
//
//   data -> fix                                  the input, at its fix point
//   const -> fix (weights), const -> fix (bias)  float values that fix() leaves unchanged
//   conv2d(input, weights, bias) [-> relu | relu6] -> fix
//   depthwise-conv2d(input, weights [1, kh, kw, C], bias) [-> relu | relu6] -> fix
//   maxpool2d -> fix
//   avgpool2d [-> mul(const kh kw N / 2^M)] -> fix   (the DPU's factor, as the quantizer writes it)
//   add(inputs...) [-> relu] -> fix
//   concat(inputs..., axis 3) -> fix
// A fix may feed several ops (a residual block's input, a concat's branches).
//
// A linear layer becomes a conv2d whose kernel covers its input map (a flatten of [C][H][W]
// features is then the same sum), which the DPU runs as a convolution. Vitis AI's quantizer
// writes a matmul after a flatten instead; sgp keeps the conv because NHWC and NCHW flatten
// the same map in different orders, and the window over the map needs no reshape op whose
// order the compiler must agree on (docs/deployment.md). Part of the optional xmodel
// component (needs protobuf): link sgp::xmodel.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/io/atomic_file.hpp"
#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/dpu_arithmetic.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"

namespace sgp::xmodel {

enum class data_type : std::int32_t { int_ = 0, uint_ = 1, xint = 2, xuint = 3, float_ = 4, bfloat = 5, unknown = 6 };

namespace detail {

inline sgp::xmodel::pb::AttrValue& attr(sgp::xmodel::pb::OPNode& op, const std::string& name) {
    return (*op.mutable_op_attr())[name];
}
inline void set_int32_vec(sgp::xmodel::pb::OPNode& op, const std::string& name, std::initializer_list<std::int32_t> v) {
    auto* vec = attr(op, name).mutable_int32_vec();
    for (auto x : v) vec->add_value(x);
}

// Builds the graph op by op; `last` is the op the next one reads.
class graph_builder {
public:
    explicit graph_builder(const std::string& name) { g_.set_graph_name(name); }

    sgp::xmodel::pb::OPNode& add(const std::string& name, const std::string& type, std::vector<std::uint32_t> dims,
                                 std::initializer_list<std::pair<const char*, std::string>> args) {
        auto& op = *g_.add_op_node();
        op.set_op_name(name);
        op.set_op_type(type);
        for (const auto& [arg, producer] : args) {
            auto* a = op.add_args();
            a->set_arg_name(arg);
            a->add_arg_ops(producer);
        }
        auto* t = op.mutable_output_tensor();
        t->set_tensor_name(name);
        for (auto d : dims) t->add_tensor_dim(d);
        t->set_data_type(static_cast<std::int32_t>(data_type::float_));
        t->set_tensor_bit_width(32);
        names_.push_back(name);
        return op;
    }
    // An op whose one input `arg` has several producers (add, mul, concat: XIR lists them
    // under one argument, in order).
    sgp::xmodel::pb::OPNode& add_repeated(const std::string& name, const std::string& type,
                                          std::vector<std::uint32_t> dims, const std::string& arg,
                                          const std::vector<std::string>& producers) {
        auto& op = add(name, type, std::move(dims), {});
        auto* a = op.add_args();
        a->set_arg_name(arg);
        for (const auto& p : producers) a->add_arg_ops(p);
        return op;
    }
    // fix(producer) at fix point fp: the same shape, DPU rounding, signed 8 bits.
    std::string fix(const std::string& producer, int fp, const std::vector<std::uint32_t>& dims) {
        auto& op = add(producer + "_fix", "fix", dims, {{"input", producer}});
        attr(op, "fix_point").set_int32_value(fp);
        attr(op, "bit_width").set_int32_value(8);
        attr(op, "if_signed").set_bool_value(true);
        attr(op, "round_mode").set_string_value("DPU_ROUND");
        return op.op_name();
    }
    // A float32 constant (little-endian bytes, as XIR stores them).
    std::string constant(const std::string& name, const std::vector<float>& values, std::vector<std::uint32_t> dims) {
        auto& op = add(name, "const", dims, {});
        std::string bytes(values.size() * 4, '\0');
        for (std::size_t i = 0; i < values.size(); ++i) {
            auto u = std::bit_cast<std::uint32_t>(values[i]);
            for (int b = 0; b < 4; ++b)
                bytes[i * 4 + static_cast<std::size_t>(b)] = static_cast<char>((u >> (8 * b)) & 0xFF);
        }
        attr(op, "data").mutable_bytes_value()->set_value(std::move(bytes));  // XIR's Bytes wrapper
        auto* shape = attr(op, "shape").mutable_int32_vec();
        for (auto d : dims) shape->add_value(static_cast<std::int32_t>(d));
        attr(op, "data_type").set_string_value("FLOAT32");
        return name;
    }
    sgp::xmodel::pb::Graph finish() {
        auto* root = g_.mutable_subg_root();
        root->set_subgraph_name("root");
        for (const auto& n : names_) root->add_op_name(n);
        (*g_.mutable_graph_attr())["origin"].set_string_value("sgp");
        return std::move(g_);
    }

private:
    sgp::xmodel::pb::Graph g_;
    std::vector<std::string> names_;
};

inline std::uint32_t u32(std::size_t v) {
    return static_cast<std::uint32_t>(v);
}

// A conv's fused activation as its own op before the fix (relu, relu6), or none.
inline std::string activation(graph_builder& b, const std::string& producer, quant::activation a, const std::string& p,
                              const std::vector<std::uint32_t>& dims) {
    if (a == quant::activation::none) return producer;
    const std::string type(quant::activation_name(a));
    return b.add(p + "_" + type, type, dims, {{"input", producer}}).op_name();
}

// A depthwise conv as Vitis AI's quantizer writes it: weights [1, kh, kw, C] (the channel
// multiplier first), no group attribute; returns the fix of its output.
inline std::string depthwise(graph_builder& b, const quant::qconv& q, const std::string& p, const std::string& input,
                             const std::vector<std::uint32_t>& dims) {
    const std::size_t k = q.k, c = q.cout;
    std::vector<float> wt(k * k * c), bias(c);
    for (std::size_t ch = 0; ch < c; ++ch) {
        for (std::size_t t = 0; t < k * k; ++t) wt[t * c + ch] = quant::dequantize(q.qweight[ch * k * k + t], q.fp_w);
        bias[ch] = quant::dequantize(q.qbias[ch], q.fp_b);
    }
    const std::vector<std::uint32_t> wdims{1, u32(k), u32(k), u32(c)};
    const std::string wfix = b.fix(b.constant(p + "_weights", wt, wdims), q.fp_w, wdims);
    const std::string bfix = b.fix(b.constant(p + "_bias", bias, {u32(c)}), q.fp_b, {u32(c)});
    auto& op =
        b.add(p + "_depthwise_conv2d", "depthwise-conv2d", dims, {{"input", input}, {"weights", wfix}, {"bias", bfix}});
    const auto K = static_cast<std::int32_t>(k), S = static_cast<std::int32_t>(q.stride),
               P = static_cast<std::int32_t>(q.pad);
    set_int32_vec(op, "kernel", {K, K});
    set_int32_vec(op, "stride", {S, S});
    set_int32_vec(op, "dilation", {1, 1});
    attr(op, "pad_mode").set_string_value("FLOOR");
    set_int32_vec(op, "pad", {P, P, P, P});
    return b.fix(activation(b, op.op_name(), q.act, p, dims), q.fp_out, dims);
}

}  // namespace detail

// The graph of a calibrated qmodel.
inline sgp::xmodel::pb::Graph to_graph(const quant::qmodel& m, const std::string& name = "sgp") {
    using detail::u32;
    quant::validate_calibrated(m, "xmodel::to_graph");
    detail::graph_builder b(name);
    auto nhwc = [&](std::size_t t) {
        const auto d = m.dims(t);
        return std::vector<std::uint32_t>{1, u32(d.h), u32(d.w), u32(d.c)};
    };
    const auto K = [](std::size_t v) { return static_cast<std::int32_t>(v); };
    std::vector<std::string> produced(m.tensor_count());  // the fix op that holds each tensor
    {
        const auto d = m.dims(0);
        auto& data = b.add("input", "data", nhwc(0), {});
        detail::set_int32_vec(data, "shape", {1, K(d.h), K(d.w), K(d.c)});
        detail::attr(data, "data_type").set_string_value("FLOAT32");
        produced[0] = b.fix("input", m.fp_in, nhwc(0));
    }
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        const auto& inputs = quant::base_of(m.ops[i]).inputs;
        const std::string& last = produced[inputs[0]];
        const auto dims = nhwc(i + 1);
        std::visit(
            quant::overloaded{
                [&](const quant::qconv& q) {
                    const std::string p = "layer" + std::to_string(q.layer);
                    if (q.depthwise()) {
                        produced[i + 1] = depthwise(b, q, p, last, dims);
                        return;
                    }
                    const auto in = m.dims(inputs[0]);
                    const auto win = quant::window_of(q, in.c, in.h, in.w, "xmodel::to_graph", i);
                    const std::size_t kh = win.kh, kw = win.kw, cin = win.cin, stride = win.stride, pad = win.pad;
                    std::vector<float> wt(q.cout * kh * kw * cin), bias(q.cout);
                    for (std::size_t o = 0; o < q.cout; ++o) {
                        for (std::size_t ci = 0; ci < cin; ++ci)
                            for (std::size_t y = 0; y < kh; ++y)
                                for (std::size_t x = 0; x < kw; ++x)
                                    wt[((o * kh + y) * kw + x) * cin + ci] =  // OIHW -> OHWI
                                        quant::dequantize(q.qweight[((o * cin + ci) * kh + y) * kw + x], q.fp_w);
                        bias[o] = quant::dequantize(q.qbias[o], q.fp_b);
                    }
                    const std::vector<std::uint32_t> wdims{u32(q.cout), u32(kh), u32(kw), u32(cin)};
                    const std::string wfix = b.fix(b.constant(p + "_weights", wt, wdims), q.fp_w, wdims);
                    const std::string bfix = b.fix(b.constant(p + "_bias", bias, {u32(q.cout)}), q.fp_b, {u32(q.cout)});
                    auto& conv =
                        b.add(p + "_conv2d", "conv2d", dims, {{"input", last}, {"weights", wfix}, {"bias", bfix}});
                    detail::set_int32_vec(conv, "kernel", {K(kw), K(kh)});
                    detail::set_int32_vec(conv, "stride", {K(stride), K(stride)});
                    detail::set_int32_vec(conv, "dilation", {1, 1});
                    detail::attr(conv, "pad_mode").set_string_value("FLOOR");
                    detail::set_int32_vec(conv, "pad", {K(pad), K(pad), K(pad), K(pad)});
                    detail::attr(conv, "group").set_int32_value(1);
                    produced[i + 1] = b.fix(detail::activation(b, conv.op_name(), q.act, p, dims), q.fp_out, dims);
                },
                [&](const quant::qmax_pool& pool) {
                    const std::string p = "layer" + std::to_string(pool.layer);
                    auto& op = b.add(p + "_maxpool2d", "maxpool2d", dims, {{"input", last}});
                    detail::set_int32_vec(op, "kernel", {K(pool.k), K(pool.k)});
                    detail::set_int32_vec(op, "stride", {K(pool.stride), K(pool.stride)});
                    detail::attr(op, "pad_mode").set_string_value("FLOOR");
                    detail::set_int32_vec(op, "pad", {0, 0, 0, 0});
                    detail::attr(op, "global").set_bool_value(false);
                    produced[i + 1] = b.fix(op.op_name(), pool.fp_out, dims);
                },
                [&](const quant::qavg_pool& pool) {
                    const std::string p = "layer" + std::to_string(pool.layer);
                    auto& op = b.add(p + "_avgpool2d", "avgpool2d", dims, {{"input", last}});
                    detail::set_int32_vec(op, "kernel", {K(pool.k), K(pool.k)});
                    detail::set_int32_vec(op, "stride", {K(pool.stride), K(pool.stride)});
                    detail::attr(op, "pad_mode").set_string_value("FLOOR");
                    detail::set_int32_vec(op, "pad", {0, 0, 0, 0});
                    detail::attr(op, "global").set_bool_value(pool.global());
                    detail::attr(op, "count_include_pad").set_bool_value(true);
                    detail::attr(op, "count_include_invalid").set_bool_value(true);
                    std::string out = op.op_name();
                    // The DPU's average is the sum times N / 2^M: Vitis AI's quantizer writes the
                    // difference from the true mean as a mul by kh kw N / 2^M (exactly 1 for
                    // power-of-two windows, then left out).
                    const auto s = quant::dpu::avg_pool_scale(pool.k, pool.k);
                    const double scale = static_cast<double>(pool.k * pool.k * s.n) / std::ldexp(1.0, s.m);
                    if (scale != 1.0) {
                        const std::string c = b.constant(p + "_avgpool_scale", {static_cast<float>(scale)}, {1});
                        out = b.add_repeated(p + "_avgpool_mul", "mul", dims, "input", {out, c}).op_name();
                    }
                    produced[i + 1] = b.fix(out, pool.fp_out, dims);
                },
                [&](const quant::qadd& a) {
                    const std::string p = "layer" + std::to_string(a.layer);
                    std::vector<std::string> in;
                    for (auto t : inputs) in.push_back(produced[t]);
                    auto& op = b.add_repeated(p + "_add", "add", dims, "input", in);
                    produced[i + 1] = b.fix(detail::activation(b, op.op_name(), a.act, p, dims), a.fp_out, dims);
                },
                [&](const quant::qconcat& k) {
                    const std::string p = "layer" + std::to_string(k.layer);
                    std::vector<std::string> in;
                    for (auto t : inputs) in.push_back(produced[t]);
                    auto& op = b.add_repeated(p + "_concat", "concat", dims, "input", in);
                    detail::attr(op, "axis").set_int32_value(3);  // channels of NHWC
                    produced[i + 1] = b.fix(op.op_name(), k.fp_out, dims);
                }},
            m.ops[i]);
    }
    return b.finish();
}

// The encoded graph, byte-deterministic: maps (attributes) in sorted key order, so the same
// model always gives the same file.
inline std::string to_bytes(const sgp::xmodel::pb::Graph& g, const std::string& where) {
    std::string bytes;
    {
        google::protobuf::io::StringOutputStream stream(&bytes);
        google::protobuf::io::CodedOutputStream coded(&stream);
        coded.SetSerializationDeterministic(true);
        if (!g.SerializeToCodedStream(&coded)) fail(where, "could not serialize the graph");
    }
    return bytes;
}

// Writes the graph of m to `path` (temp file + rename: never a half-written model), after the
// checks XIR's reader needs: sgp never writes a file XIR would abort on.
inline void write(const quant::qmodel& m, const std::string& path, const std::string& name = "sgp") {
    const auto g = to_graph(m, name);
    validate(g, path + " (being written)");
    write_file_atomic(path, to_bytes(g, path));
}

}  // namespace sgp::xmodel
