#pragma once
// Reading any .xmodel (written by sgp, by Vitis AI's quantizer or by its compiler) and
// checking that it is a graph one can work with: a file that is missing, empty, truncated or
// corrupt, or a graph whose ops read ops that do not exist, is an sgp::error naming the file
// and the problem. `describe` prints ops, shapes, attributes and fix points (sgp-xmodel-info).
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"

namespace sgp::xmodel {

// Checks what every consumer of a graph relies on; throws naming `where`.
inline void validate(const sgp::xmodel::pb::Graph& g, const std::string& where) {
    if (g.op_node_size() == 0) fail(where, "the graph has no ops (not an xmodel, or an empty one)");
    std::set<std::string> names;
    for (const auto& op : g.op_node()) {
        if (op.op_name().empty()) fail(where, "an op of type '" + op.op_type() + "' has no name");
        if (op.op_type().empty()) fail(where, "op '" + op.op_name() + "' has no type");
        if (!names.insert(op.op_name()).second) fail(where, "two ops are named '" + op.op_name() + "'");
    }
    for (const auto& op : g.op_node()) {
        for (const auto& arg : op.args())
            for (const auto& producer : arg.arg_ops())
                if (!names.count(producer))
                    fail(where, "op '" + op.op_name() + "' reads '" + producer + "', which is not in the graph");
        const auto& t = op.output_tensor();
        double elements = 1;
        for (auto d : t.tensor_dim()) elements *= d;
        if (elements > 1e12) fail(where, "op '" + op.op_name() + "' has an implausible shape");
        if (t.data_type() < 0 || t.data_type() > 6)
            fail(where, "op '" + op.op_name() + "' has an unknown data type " + std::to_string(t.data_type()));
        if (op.op_type() == "fix") {
            const auto it = op.op_attr().find("fix_point");
            if (it == op.op_attr().end() || it->second.value_case() != sgp::xmodel::pb::AttrValue::kInt32Value)
                fail(where, "fix op '" + op.op_name() + "' has no int32 fix_point");
        }
        if (op.op_type() == "const") {
            const auto it = op.op_attr().find("data");
            if (it == op.op_attr().end() || it->second.value_case() != sgp::xmodel::pb::AttrValue::kBytesValue)
                fail(where, "const op '" + op.op_name() + "' has no data bytes");
            const double bits = elements * (t.tensor_bit_width() > 0 ? t.tensor_bit_width() : 8);
            if (static_cast<double>(it->second.bytes_value().size()) * 8 != bits)
                fail(where, "const op '" + op.op_name() + "' holds " + std::to_string(it->second.bytes_value().size()) +
                                " bytes for its " + std::to_string(static_cast<std::uint64_t>(elements)) + " values");
        }
    }
    // Subgraphs name existing ops only.
    auto check = [&](const auto& self, const sgp::xmodel::pb::SubGraph& s) -> void {
        for (const auto& n : s.op_name())
            if (!names.count(n)) fail(where, "subgraph '" + s.subgraph_name() + "' lists unknown op '" + n + "'");
        for (const auto& child : s.subg_child()) self(self, child);
    };
    check(check, g.subg_root());
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
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot open the file");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(path, "read error");
    return parse(bytes, path);
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
            s << "bytes[" << v.bytes_value().size() << "]";
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
        default:
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
// attributes (a const's data only by size); then the subgraph tree with each one's device.
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
}

}  // namespace sgp::xmodel
