#pragma once
// Reading any .xmodel (written by sgp, by XIR itself, by Vitis AI's quantizer or its compiler)
// and checking that it is a graph XIR can load: a file that is missing, empty, truncated or
// corrupt, or a graph XIR's reader would abort on (xir_ops.hpp), is an sgp::error naming the
// file, the op and the problem. `describe` prints ops, shapes, attributes and fix points (sgp-xmodel-info).
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"
#include "sgp/export/xir_ops.hpp"
#include "sgp/io/read_file.hpp"

namespace sgp::xmodel {

namespace detail {

inline std::string dims_text(const std::vector<std::int64_t>& d) {
    std::string s = "[";
    for (std::size_t i = 0; i < d.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(d[i]);
    }
    s += ']';
    return s;
}

// The output shape XIR's shape inference gives an op of a type sgp knows, or of a type XIR
// does not know (`custom`: its shape attribute), from the stored shapes of its inputs; nullopt
// for other types. Fails where XIR's own checks would abort, and is stricter in places (a
// kernel that the weights do not match, a window that does not fit, negative padding).
inline std::optional<std::vector<std::int64_t>> infer_shape(
    const sgp::xmodel::pb::OPNode& op, const std::map<std::string, const sgp::xmodel::pb::OPNode*>& ops, bool custom,
    const std::string& where) {
    const std::string who = op.op_type() + " '" + op.op_name() + "'";
    auto input = [&](const char* arg) -> std::vector<std::int64_t> {
        for (const auto& a : op.args())
            if (a.arg_name() == arg && a.arg_ops_size() == 1) {
                const auto& d = ops.at(a.arg_ops(0))->output_tensor().tensor_dim();
                return {d.begin(), d.end()};
            }
        fail(where, who + " has no '" + std::string(arg) + "' input");
    };
    auto ints = [&](const char* name, std::vector<std::int64_t> fallback) {
        const auto it = op.op_attr().find(name);
        if (it == op.op_attr().end()) return fallback;
        const auto& v = it->second.int32_vec().value();
        return std::vector<std::int64_t>(v.begin(), v.end());
    };
    const std::string& type = op.op_type();
    if (type == "data" || type == "const" || custom) {
        const auto shape = ints("shape", {});
        if (shape.empty()) fail(where, who + " has an empty shape");
        for (auto d : shape)
            if (d <= 0) fail(where, who + " has a shape with a dimension <= 0: " + dims_text(shape));
        return shape;
    }
    if (type == "fix" || type == "relu" || type == "relu6") return input("input");
    if (type == "add" || type == "mul" || type == "concat") {
        std::vector<std::vector<std::int64_t>> in;
        for (const auto& a : op.args())
            if (a.arg_name() == "input")
                for (const auto& p : a.arg_ops()) {
                    const auto& d = ops.at(p)->output_tensor().tensor_dim();
                    in.emplace_back(d.begin(), d.end());
                }
        if (in.size() < 2) fail(where, who + " has fewer than two inputs");
        if (type == "concat") {
            auto axis = static_cast<std::int64_t>(op.op_attr().at("axis").int32_value());
            const auto rank = static_cast<std::int64_t>(in[0].size());
            if (axis < 0) axis += rank;
            if (axis < 0 || axis >= rank) fail(where, who + ": axis out of range");
            auto out = in[0];
            for (std::size_t k = 1; k < in.size(); ++k) {
                if (in[k].size() != in[0].size()) fail(where, who + ": inputs of different ranks");
                for (std::int64_t i = 0; i < rank; ++i)
                    if (i != axis && in[k][static_cast<std::size_t>(i)] != in[0][static_cast<std::size_t>(i)])
                        fail(where, who + ": input " + dims_text(in[k]) + " does not fit " + dims_text(in[0]));
                out[static_cast<std::size_t>(axis)] += in[k][static_cast<std::size_t>(axis)];
            }
            return out;
        }
        // numpy broadcasting, aligned at the last dimension.
        std::vector<std::int64_t> out;
        for (const auto& d : in) {
            if (d.size() > out.size()) out.insert(out.begin(), d.size() - out.size(), 1);
            for (std::size_t i = 0; i < d.size(); ++i) {
                auto& o = out[out.size() - d.size() + i];
                if (o == 1)
                    o = d[i];
                else if (d[i] != 1 && d[i] != o)
                    fail(where, who + ": inputs " + dims_text(in[0]) + " and " + dims_text(d) + " do not broadcast");
            }
        }
        return out;
    }
    const bool depthwise = type == "depthwise-conv2d", conv = type == "conv2d" || depthwise;
    if (!conv && type != "maxpool2d" && type != "avgpool2d") return std::nullopt;
    const auto in = input("input");
    if (in.size() != 4) fail(where, who + " reads a " + std::to_string(in.size()) + "-d tensor, not [N,H,W,C]");
    const auto kernel = ints("kernel", {}), stride = ints("stride", {}), pad = ints("pad", {0, 0, 0, 0});
    // XIR's pooling ignores a dilation attribute (it passes {1, 1}); only the convs declare one.
    const auto dilation = conv ? ints("dilation", {1, 1}) : std::vector<std::int64_t>{1, 1};
    for (std::size_t i = 0; i < 2; ++i)
        if (kernel[i] < 1 || stride[i] < 1 || dilation[i] < 1)
            fail(where, who + ": kernel, stride and dilation must be >= 1");
    for (auto p : pad)
        if (p < 0) fail(where, who + ": negative padding");
    std::int64_t channels = in[3];
    if (type == "conv2d") {
        const auto w = input("weights");
        if (w.size() != 4) fail(where, who + ": weights are not 4-d [oc, kh, kw, ic]");
        std::int64_t group = 1;
        if (const auto it = op.op_attr().find("group"); it != op.op_attr().end()) group = it->second.int32_value();
        if (group < 1 || in[3] % group != 0 || w[0] % group != 0 || w[3] != in[3] / group)
            fail(where, who + ": weights " + dims_text(w) + " do not fit input " + dims_text(in) + " in " +
                            std::to_string(group) + " group(s)");
        if (w[1] != kernel[1] || w[2] != kernel[0])
            fail(where, who + ": weights " + dims_text(w) + " do not match the kernel attribute");
        channels = w[0];
    }
    if (depthwise) {  // weights [channel multiplier, kh, kw, ic]
        const auto w = input("weights");
        if (w.size() != 4 || w[3] != in[3] || w[0] < 1)
            fail(where, who + ": weights " + (w.size() == 4 ? dims_text(w) : std::string("not 4-d")) +
                            " are not [multiplier, kh, kw, " + std::to_string(in[3]) + "]");
        if (w[1] != kernel[1] || w[2] != kernel[0])
            fail(where, who + ": weights " + dims_text(w) + " do not match the kernel attribute");
        channels = w[0] * w[3];
    }
    if (conv) {
        if (const auto* bias = [&]() -> const sgp::xmodel::pb::OPNode* {
                for (const auto& a : op.args())
                    if (a.arg_name() == "bias" && a.arg_ops_size() == 1) return ops.at(a.arg_ops(0));
                return nullptr;
            }();
            bias && (bias->output_tensor().tensor_dim_size() != 1 || bias->output_tensor().tensor_dim(0) != channels))
            fail(where, who + ": the bias is not [" + std::to_string(channels) + "]");
    }
    std::int64_t oh = 1, ow = 1;
    const auto global = op.op_attr().find("global");
    if (conv || global == op.op_attr().end() || !global->second.bool_value()) {
        const std::string& mode = op.op_attr().at("pad_mode").string_value();
        // XIR's FLOOR / CEIL / SAME / VALID output sizes. XIR sums in int32: a sum beyond it
        // would wrap there (and abort on the negative size), so it is refused here.
        auto size = [&](std::int64_t x, std::int64_t p0, std::int64_t p1, std::size_t i) -> std::int64_t {
            const std::int64_t span = (kernel[i] - 1) * dilation[i] + 1, s = stride[i];
            for (std::int64_t v : {span, x + p0, x + p0 + p1, x + p0 + p1 - span, x + p0 + p1 - span + s})
                if (v > 0x7fffffff || v < -0x7fffffff - 1)
                    fail(where, who + ": the window arithmetic overflows XIR's int32");
            auto floor_div = [](std::int64_t a, std::int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
            auto ceil_div = [&](std::int64_t a, std::int64_t b) { return -floor_div(-a, b); };
            if (mode == "FLOOR") return floor_div(x + p0 + p1 - span + s, s);
            if (mode == "CEIL") return ceil_div(x + p0 + p1 - span + s, s);
            if (mode == "SAME") return ceil_div(x + p0 + p1, s);
            if (mode == "VALID") return ceil_div(x + p0 + p1 - (span - 1), s);
            fail(where, who + ": pad_mode '" + mode + "' is none of FLOOR, CEIL, SAME, VALID");
        };
        ow = size(in[2], pad[0], pad[1], 0), oh = size(in[1], pad[2], pad[3], 1);
    }
    if (oh < 1 || ow < 1) fail(where, who + ": the window does not fit the input " + dims_text(in));
    return std::vector<std::int64_t>{in[0], oh, ow, channels};
}

// Bits of one value of a const op's data, from its data_type attribute.
inline int const_bits(const sgp::xmodel::pb::OPNode& op, const std::string& where) {
    const auto& s = op.op_attr().at("data_type").string_value();
    const auto t = parse_xir_data_type(s);
    if (!t)
        fail(where, op.op_type() + " '" + op.op_name() + "': data_type '" + s + "' is not XIR's spelling (FLOAT32)");
    if (t->type == 6 || t->bits < 1 || t->bits > 64)
        fail(where, op.op_type() + " '" + op.op_name() + "': unknown data_type '" + s + "'");
    return t->bits;
}

}  // namespace detail

// Checks what XIR's reader and every consumer of a graph rely on; throws naming `where` and the
// op. Ops must come in an order where each one's producers come before it (XIR adds them in
// file order), every op a type sgp knows must satisfy XIR's definition of it (xir_ops.hpp), and
// its stored shape must be the one XIR's shape inference gives.
inline void validate(const sgp::xmodel::pb::Graph& g, const std::string& where) {
    if (g.op_node_size() == 0) fail(where, "the graph has no ops (not an xmodel, or an empty one)");
    std::map<std::string, const sgp::xmodel::pb::OPNode*> seen;
    std::set<std::string> names;
    for (const auto& op : g.op_node()) {
        if (op.op_name().empty()) fail(where, "an op of type '" + op.op_type() + "' has no name");
        if (op.op_type().empty()) fail(where, "op '" + op.op_name() + "' has no type");
        if (!names.insert(op.op_name()).second) fail(where, "two ops are named '" + op.op_name() + "'");
    }
    // The definition XIR will use for each op: sgp's for the types it writes, else the one the
    // file stores (XIR's writer stores its whole registry), else XIR's rule for unknown types.
    std::map<std::string, xir_op_def> stored;
    for (const auto& d : g.op_defs()) {
        for (const auto& a : d.attrs())
            if (a.default_value().value_case() == sgp::xmodel::pb::AttrValue::VALUE_NOT_SET)
                fail(where, "the stored definition of '" + d.name() + "' has no default value for attribute '" +
                                a.name() + "' (XIR cannot read it)");
        stored.emplace(d.name(), from_stored_def(d));
    }
    for (const auto& op : g.op_node()) {
        // XIR's reader ignores the stored definitions: it builds a built-in type from its own
        // registry and any other type as a custom op. For a built-in type sgp does not model,
        // the file's copy of the registry (written by an XIR) stands in for it.
        const xir_op_def* def = find_xir_op_def(op.op_type());
        const bool custom = !def && !is_xir_builtin(op.op_type());
        const auto s = stored.find(op.op_type());
        if (!def && !custom && s == stored.end())
            fail(where, "op '" + op.op_name() + "' is of XIR's type '" + op.op_type() +
                            "', which sgp has no definition of and the file does not define (XIR's writer stores "
                            "its definitions in field 101): it cannot be checked before XIR reads it");
        const xir_op_def unknown = custom ? custom_op_def(op.op_type()) : xir_op_def{};
        if (!def) def = custom ? &unknown : &s->second;
        for (const auto& arg : op.args())
            for (const auto& producer : arg.arg_ops()) {
                if (!names.count(producer))
                    fail(where, "op '" + op.op_name() + "' reads '" + producer + "', which is not in the graph");
                if (!seen.count(producer))
                    fail(where, "op '" + op.op_name() + "' reads '" + producer +
                                    "', which comes after it (XIR needs producers first)");
            }
        for (const auto& [key, value] : op.op_attr())
            if (value.value_case() == sgp::xmodel::pb::AttrValue::VALUE_NOT_SET)
                fail(where, "op '" + op.op_name() + "': attribute '" + key + "' has no value");
        check_against_xir_def(op, *def, where);
        const auto& t = op.output_tensor();
        double elements = 1;
        for (auto d : t.tensor_dim()) {
            if (d > 0x7fffffffu) fail(where, "op '" + op.op_name() + "' has a dimension beyond XIR's int32");
            elements *= d;
        }
        if (elements > 1e12) fail(where, "op '" + op.op_name() + "' has an implausible shape");
        if (t.data_type() < 0 || t.data_type() > 5 || t.tensor_bit_width() < 1)  // XIR refuses UNKNOWN (6) too
            fail(where, "op '" + op.op_name() + "' has an invalid output data type (code " +
                            std::to_string(t.data_type()) + ", " + std::to_string(t.tensor_bit_width()) + " bits)");
        if (const auto inferred = detail::infer_shape(op, seen, custom, where)) {
            const std::vector<std::int64_t> stored(t.tensor_dim().begin(), t.tensor_dim().end());
            if (stored != *inferred)
                fail(where, "op '" + op.op_name() + "' stores shape " + detail::dims_text(stored) +
                                ", XIR's shape inference gives " + detail::dims_text(*inferred));
        }
        if (op.op_type() == "const") {
            const auto& bytes = op.op_attr().at("data").bytes_value().value();
            const double bits = elements * detail::const_bits(op, where);
            if (static_cast<double>(bytes.size()) * 8 != bits)
                fail(where, "const op '" + op.op_name() + "' holds " + std::to_string(bytes.size()) +
                                " bytes for its " + std::to_string(static_cast<std::uint64_t>(elements)) + " values");
        }
        // An op with no producer for "input" (a source) gets its output tensor from its own
        // `shape` and `data_type` attributes in XIR, whatever its type.
        int from_input = 0;
        for (const auto& a : op.args())
            if (a.arg_name() == "input") from_input += a.arg_ops_size();
        if (from_input == 0) {
            const auto shape = op.op_attr().find("shape");
            const auto type = op.op_attr().find("data_type");
            if (shape == op.op_attr().end() || shape->second.value_case() != sgp::xmodel::pb::AttrValue::kInt32Vec ||
                type == op.op_attr().end() || type->second.value_case() != sgp::xmodel::pb::AttrValue::kStringValue)
                fail(where, "op '" + op.op_name() +
                                "' reads no input, so XIR needs its int32 vector 'shape' and string 'data_type'");
            detail::const_bits(op, where);
        }
        // Tensor attributes XIR's shape inference reads.
        if (const auto it = t.tensor_attr().find("shape_info");
            it != t.tensor_attr().end() && it->second.value_case() != sgp::xmodel::pb::AttrValue::kInt32Vec)
            fail(where, "op '" + op.op_name() + "': tensor attribute 'shape_info' is not an int32 vector");
        seen[op.op_name()] = &op;
    }
    // Subgraphs as XIR rebuilds them: below the root, each one holds ops or children, not both
    // and not neither; an op belongs to one leaf at most.
    std::set<std::string> placed;
    auto check = [&](const auto& self, const sgp::xmodel::pb::SubGraph& s, bool root) -> void {
        if (!root && (s.op_name_size() == 0) == (s.subg_child_size() == 0))
            fail(where, "subgraph '" + s.subgraph_name() + "' must hold either ops or subgraphs");
        // The attributes a runtime reads: the device (a string) and the runner libraries (a map
        // of strings), which VART and dpu_target read with those types.
        using A = sgp::xmodel::pb::AttrValue;
        for (const auto& [key, type] : {std::pair<const char*, A::ValueCase>{"device", A::kStringValue},
                                        std::pair<const char*, A::ValueCase>{"runner", A::kMapString}})
            if (const auto it = s.subg_attr().find(key); it != s.subg_attr().end() && it->second.value_case() != type)
                fail(where, "subgraph '" + s.subgraph_name() + "': attribute '" + key + "' is " +
                                attr_type_name(it->second.value_case()) + " (field " +
                                std::to_string(static_cast<int>(it->second.value_case())) + ")");
        for (const auto& n : s.op_name()) {
            if (!names.count(n)) fail(where, "subgraph '" + s.subgraph_name() + "' lists unknown op '" + n + "'");
            if (!root && !placed.insert(n).second)
                fail(where, "op '" + n + "' is in two subgraphs (the second is '" + s.subgraph_name() + "')");
        }
        for (const auto& child : s.subg_child()) self(self, child, false);
    };
    check(check, g.subg_root(), true);
}

// The graph in the bytes of a file named `where`.
inline sgp::xmodel::pb::Graph parse(const std::string& bytes, const std::string& where) {
    if (bytes.empty()) fail(where, "the file is empty");
    sgp::xmodel::pb::Graph g;
    const google::protobuf::LogSilencer quiet;  // the reason goes into the error, not to stderr
    if (!g.ParseFromString(bytes))
        fail(where, "not a serialized XIR graph (" + std::to_string(bytes.size()) +
                        " bytes that protobuf cannot parse: truncated or corrupt)");
    validate(g, where);
    return g;
}

inline sgp::xmodel::pb::Graph read(const std::string& path) {
    return parse(read_file_bytes(path), path);
}

// One attribute value as text, with its XIR type.
inline std::string to_string(const sgp::xmodel::pb::AttrValue& v) {
    std::ostringstream s;
    auto list = [&](const char* type, const auto& values) {
        s << type << "{";
        int i = 0;
        for (const auto& x : values) {
            if (i++) s << ",";
            if (i > 16) {
                s << "...";
                break;
            }
            s << x;
        }
        s << "}";
    };
    using A = sgp::xmodel::pb::AttrValue;
    switch (v.value_case()) {
        case A::kBoolValue:
            s << "bool " << (v.bool_value() ? "true" : "false");
            break;
        case A::kInt32Value:
            s << "int32 " << v.int32_value();
            break;
        case A::kUint32Value:
            s << "uint32 " << v.uint32_value();
            break;
        case A::kInt64Value:
            s << "int64 " << v.int64_value();
            break;
        case A::kUint64Value:
            s << "uint64 " << v.uint64_value();
            break;
        case A::kFloatValue:
            s << "float " << v.float_value();
            break;
        case A::kDoubleValue:
            s << "double " << v.double_value();
            break;
        case A::kStringValue:
            s << "string \"" << v.string_value() << "\"";
            break;
        case A::kBytesValue:
            s << "bytes[" << v.bytes_value().value().size() << "]";
            break;
        case A::kBoolVec:
            list("bool", v.bool_vec().value());
            break;
        case A::kInt32Vec:
            list("int32", v.int32_vec().value());
            break;
        case A::kUint32Vec:
            list("uint32", v.uint32_vec().value());
            break;
        case A::kInt64Vec:
            list("int64", v.int64_vec().value());
            break;
        case A::kUint64Vec:
            list("uint64", v.uint64_vec().value());
            break;
        case A::kFloatVec:
            list("float", v.float_vec().value());
            break;
        case A::kDoubleVec:
            list("double", v.double_vec().value());
            break;
        case A::kStringVec:
            list("string", v.string_vec().value());
            break;
        case A::kBytesVec:
            s << "bytes_vec[" << v.bytes_vec().value_size() << "]";
            break;
        case A::VALUE_NOT_SET:
            s << "(unset)";
            break;
        default:  // the string-keyed maps (fields 22-32)
            s << "map (field " << static_cast<int>(v.value_case()) << ")";
            break;
    }
    return s.str();
}

inline const char* data_type_name(std::int32_t t) {
    static const char* names[] = {"INT", "UINT", "XINT", "XUINT", "FLOAT", "BFLOAT", "UNKNOWN"};
    return t >= 0 && t <= 6 ? names[t] : "?";
}

// The graph as text: ops in file order with their inputs, output shape and type, and
// attributes (a const's data only by size); then the subgraph tree with each one's device and
// the number of op definitions the file carries.
inline void describe(const sgp::xmodel::pb::Graph& g, std::ostream& out) {
    std::map<std::string, int> types;
    for (const auto& op : g.op_node()) ++types[op.op_type()];
    out << "graph '" << g.graph_name() << "': " << g.op_node_size() << " ops (";
    int i = 0;
    for (const auto& [type, n] : types) out << (i++ ? ", " : "") << n << " " << type;
    out << ")\n";
    for (const auto& op : g.op_node()) {
        const auto& t = op.output_tensor();
        out << "  " << op.op_name() << "  " << op.op_type() << "  [";
        for (int d = 0; d < t.tensor_dim_size(); ++d) out << (d ? "," : "") << t.tensor_dim(d);
        out << "] " << data_type_name(t.data_type()) << t.tensor_bit_width();
        for (const auto& arg : op.args()) {
            out << "  " << arg.arg_name() << "=";
            if (arg.arg_ops_size() == 0) out << "(none)";  // an absent optional input, as XIR writes it
            for (int k = 0; k < arg.arg_ops_size(); ++k) out << (k ? "," : "") << arg.arg_ops(k);
        }
        out << "\n";
        // Attributes sorted by name (protobuf maps have no order).
        std::map<std::string, std::string> attrs;
        for (const auto& [k, v] : op.op_attr()) attrs[k] = to_string(v);
        for (const auto& [k, v] : attrs) out << "      " << k << ": " << v << "\n";
    }
    auto tree = [&](const auto& self, const sgp::xmodel::pb::SubGraph& s, int depth) -> void {
        out << std::string(static_cast<std::size_t>(2 * depth + 2), ' ') << "subgraph '" << s.subgraph_name() << "'";
        if (const auto it = s.subg_attr().find("device"); it != s.subg_attr().end())
            out << " device " << to_string(it->second);
        out << ": " << s.op_name_size() << " ops, " << s.subg_child_size() << " children\n";
        for (const auto& c : s.subg_child()) self(self, c, depth + 1);
    };
    if (g.has_subg_root()) tree(tree, g.subg_root(), 0);
    if (g.op_defs_size() > 0) out << "  " << g.op_defs_size() << " op definitions stored (XIR's writer)\n";
}

}  // namespace sgp::xmodel
