#pragma once
// A calibrated qmodel as a quantized XIR graph (.xmodel), the form Vitis AI's quantizer hands
// to the compiler (vai_c_xir): float ops plus `fix` ops that carry the fix points; NHWC
// activations, OHWI weights; every attribute with the type XIR's op registry expects.
//
//   data -> fix                                  the input, at its fix point
//   const -> fix (weights), const -> fix (bias)  float values that fix() leaves unchanged
//   conv2d(input, weights, bias) [-> relu] -> fix
//   maxpool2d -> fix
//
// A linear layer becomes a conv2d whose kernel covers its input map (a flatten of [C][H][W]
// features is then the same sum), which the DPU runs as a convolution. Part of the optional
// xmodel component (needs protobuf): link sgp::xmodel.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/io/atomic_file.hpp"
#include "sgp/quant/calibrate.hpp"
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

}  // namespace detail

// The graph of a calibrated qmodel.
inline sgp::xmodel::pb::Graph to_graph(const quant::qmodel& m, const std::string& name = "sgp") {
    using detail::u32;
    if (m.ops.empty()) fail("xmodel::to_graph", "the model has no operations");
    detail::graph_builder b(name);
    std::size_t c = m.c, h = m.h, w = m.w;
    std::vector<std::uint32_t> dims{1, u32(h), u32(w), u32(c)};
    auto& data = b.add("input", "data", dims, {});
    detail::set_int32_vec(
        data, "shape", {1, static_cast<std::int32_t>(h), static_cast<std::int32_t>(w), static_cast<std::int32_t>(c)});
    detail::attr(data, "data_type").set_string_value("FLOAT32");
    std::string last = b.fix("input", m.fp_in, dims);
    for (std::size_t i = 0; i < m.ops.size(); ++i) {
        if (const auto* q = std::get_if<quant::qconv>(&m.ops[i])) {
            quant::require_calibrated(*q, "xmodel::to_graph");
            const std::string p = "layer" + std::to_string(q->layer);
            const auto win = quant::window_of(*q, c, h, w, "xmodel::to_graph", i);
            const std::size_t kh = win.kh, kw = win.kw, cin = win.cin, stride = win.stride, pad = win.pad;
            std::vector<float> wt(q->cout * kh * kw * cin), bias(q->cout);
            for (std::size_t o = 0; o < q->cout; ++o) {
                for (std::size_t ci = 0; ci < cin; ++ci)
                    for (std::size_t y = 0; y < kh; ++y)
                        for (std::size_t x = 0; x < kw; ++x)
                            wt[((o * kh + y) * kw + x) * cin + ci] =  // OIHW -> OHWI
                                quant::dequantize(q->qweight[((o * cin + ci) * kh + y) * kw + x], q->fp_w);
                bias[o] = quant::dequantize(q->qbias[o], q->fp_b);
            }
            const std::vector<std::uint32_t> wdims{u32(q->cout), u32(kh), u32(kw), u32(cin)};
            const std::string wfix = b.fix(b.constant(p + "_weights", wt, wdims), q->fp_w, wdims);
            const std::string bfix = b.fix(b.constant(p + "_bias", bias, {u32(q->cout)}), q->fp_b, {u32(q->cout)});
            const std::size_t oh = win.oh, ow = win.ow;
            dims = {1, u32(oh), u32(ow), u32(q->cout)};
            auto& conv = b.add(p + "_conv2d", "conv2d", dims, {{"input", last}, {"weights", wfix}, {"bias", bfix}});
            const auto K = [](std::size_t v) { return static_cast<std::int32_t>(v); };
            detail::set_int32_vec(conv, "kernel", {K(kw), K(kh)});
            detail::set_int32_vec(conv, "stride", {K(stride), K(stride)});
            detail::set_int32_vec(conv, "dilation", {1, 1});
            detail::attr(conv, "pad_mode").set_string_value("FLOOR");
            detail::set_int32_vec(conv, "pad", {K(pad), K(pad), K(pad), K(pad)});
            detail::attr(conv, "group").set_int32_value(1);
            last = conv.op_name();
            if (q->relu) last = b.add(p + "_relu", "relu", dims, {{"input", last}}).op_name();
            last = b.fix(last, q->fp_out, dims);
            c = q->cout, h = oh, w = ow;
        } else {
            const auto& pool = std::get<quant::qmax_pool>(m.ops[i]);
            const std::string p = "layer" + std::to_string(pool.layer);
            dims = {1, u32(pool.oh), u32(pool.ow), u32(pool.c)};
            auto& op = b.add(p + "_maxpool2d", "maxpool2d", dims, {{"input", last}});
            const auto K = static_cast<std::int32_t>(pool.k), S = static_cast<std::int32_t>(pool.stride);
            detail::set_int32_vec(op, "kernel", {K, K});
            detail::set_int32_vec(op, "stride", {S, S});
            detail::attr(op, "pad_mode").set_string_value("FLOOR");
            detail::set_int32_vec(op, "pad", {0, 0, 0, 0});
            detail::attr(op, "global").set_bool_value(false);
            last = b.fix(op.op_name(), m.fp_after(i), dims);
            h = pool.oh, w = pool.ow;
        }
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
