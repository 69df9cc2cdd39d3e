#pragma once
// Ways a .xmodel can be wrong, for the reader's fuzz test and the differential test against
// XIR: random edits of the bytes, and structural edits of a graph (each returns what it did).
#include <sgp/export/xir_graph.pb.h>

#include <sgp/core/rng.hpp>
#include <string>
#include <utility>

namespace sgp_test {

inline std::string mutate_bytes(std::string b, sgp::rng& r) {
    const int edits = 1 + static_cast<int>(r.next() % 3);
    for (int e = 0; e < edits && !b.empty(); ++e) {
        const std::size_t at = r.next() % b.size();
        switch (r.next() % 9) {
            case 0:
                b[at] = static_cast<char>(b[at] ^ (1 << (r.next() % 8)));
                break;
            case 1:
                b[at] = static_cast<char>(r.next());
                break;
            case 2:
                b.resize(at);
                break;
            case 3:
                b.insert(at, 1 + r.next() % 16, static_cast<char>(r.next()));
                break;
            case 4:
                b.erase(at, 1 + r.next() % 16);
                break;
            default:
                b[at] = static_cast<char>(b[at] + 1 - static_cast<int>(r.next() % 3));
                break;
        }
    }
    return b;
}

// One structural edit of g: an attribute dropped, retyped, resized, set to an odd value or
// added undeclared; an input dropped, renamed or doubled; two ops swapped; a shape or data type
// changed; an op retyped; a subgraph added that XIR cannot rebuild; a stored op definition,
// a tensor attribute or a subgraph attribute edited.
inline std::string mutate(sgp::xmodel::pb::Graph& g, sgp::rng& r) {
    using A = sgp::xmodel::pb::AttrValue;
    const int n = g.op_node_size();
    auto& op = *g.mutable_op_node(static_cast<int>(r.next() % static_cast<std::uint64_t>(n)));
    const std::string who = op.op_type() + " '" + op.op_name() + "': ";
    auto pick_attr = [&]() -> std::pair<std::string, A*> {
        if (op.op_attr().empty()) return {"", nullptr};
        auto it = op.mutable_op_attr()->begin();
        std::advance(it, static_cast<long>(r.next() % op.op_attr().size()));
        return {it->first, &it->second};
    };
    static const char* types[] = {"FLOAT32", "float32", "Float32", "FLOAT", "32", "XINT8", "int8", "junk", ""};
    static const char* modes[] = {"FLOOR", "CEIL", "SAME", "VALID", "floor", "", "MIRROR"};
    static const char* op_types[] = {"conv2d", "relu", "fix", "maxpool2d", "const", "data", "softmax", "no-such-op"};
    switch (r.next() % 18) {
        case 14: {  // an attribute the op's definition does not declare, of some type
            auto& a = (*op.mutable_op_attr())[r.next() % 2 ? "dilation" : "extra"];
            if (r.next() % 2)
                a.set_string_value("x");
            else
                a.mutable_int32_vec()->add_value(static_cast<int>(r.next() % 5));
            return who + "an undeclared attribute added";
        }
        case 15: {  // the stored op definitions (files XIR wrote carry them)
            if (g.op_defs_size() == 0) {
                auto* d = g.add_op_defs();
                d->set_name(op.op_type());
                d->add_input_args()->set_name("x");
                return "a definition of " + op.op_type() + " stored";
            }
            auto& d = *g.mutable_op_defs(static_cast<int>(r.next() % static_cast<std::uint64_t>(g.op_defs_size())));
            switch (r.next() % 4) {
                case 0:
                    if (d.attrs_size() > 0) d.mutable_attrs(0)->clear_default_value();
                    break;
                case 1:
                    if (d.input_args_size() > 0) d.mutable_input_args(0)->set_name("x");
                    break;
                case 2:
                    if (d.input_args_size() > 0)
                        d.mutable_input_args(0)->set_occur_type(sgp::xmodel::pb::OpArgDef::REPEATED);
                    break;
                default:
                    d.set_name(op.op_type());
                    break;
            }
            return "stored definition of " + d.name() + " edited";
        }
        case 16: {  // a tensor attribute of some type
            auto& a = (*op.mutable_output_tensor()->mutable_tensor_attr())[r.next() % 2 ? "shape_info" : "fix_point"];
            if (r.next() % 2)
                a.set_int32_value(3);
            else
                a.mutable_int32_vec()->add_value(3);
            return who + "a tensor attribute set";
        }
        case 17: {  // subgraph attributes a runtime reads
            auto& attrs = *g.mutable_subg_root()->mutable_subg_attr();
            if (r.next() % 2)
                attrs["device"].set_int32_value(1);
            else
                attrs["runner"].set_string_value("lib.so");
            return "a root subgraph attribute set";
        }
        case 0: {
            auto [name, a] = pick_attr();
            if (!a) return who + "nothing";
            op.mutable_op_attr()->erase(name);
            return who + "attribute " + name + " removed";
        }
        case 1: {
            auto [name, a] = pick_attr();
            if (!a) return who + "nothing";
            switch (r.next() % 4) {
                case 0:
                    a->set_int32_value(3);
                    break;
                case 1:
                    a->set_string_value("3");
                    break;
                case 2:
                    a->mutable_int32_vec()->add_value(3);
                    break;
                default:
                    a->mutable_bytes_value()->set_value("abcd");
                    break;
            }
            return who + "attribute " + name + " retyped";
        }
        case 2: {
            auto [name, a] = pick_attr();
            if (!a || a->value_case() != A::kInt32Vec) return who + "nothing";
            if (r.next() % 2 && a->int32_vec().value_size() > 0)
                a->mutable_int32_vec()->mutable_value()->RemoveLast();
            else
                a->mutable_int32_vec()->add_value(1);
            return who + "vector " + name + " resized";
        }
        case 3: {
            auto [name, a] = pick_attr();
            if (!a) return who + "nothing";
            static const int odd[] = {0, -1, 2, 3, 1000, -7, 0x40000000, 0x7fffffff, -0x7fffffff - 1};
            const int v = odd[r.next() % 9];
            if (a->value_case() == A::kInt32Vec && a->int32_vec().value_size() > 0)
                a->mutable_int32_vec()->set_value(
                    static_cast<int>(r.next() % static_cast<std::uint64_t>(a->int32_vec().value_size())), v);
            else if (a->value_case() == A::kInt32Value)
                a->set_int32_value(v);
            else if (a->value_case() == A::kStringValue)
                a->set_string_value(name == "data_type" ? types[r.next() % 9] : modes[r.next() % 7]);
            else if (a->value_case() == A::kBytesValue)
                a->mutable_bytes_value()->mutable_value()->resize(a->bytes_value().value().size() / 2);
            return who + "attribute " + name + " set to an odd value";
        }
        case 4:
            if (op.args_size() == 0) return who + "nothing";
            op.mutable_args()->DeleteSubrange(static_cast<int>(r.next() % static_cast<std::uint64_t>(op.args_size())),
                                              1);
            return who + "an input removed";
        case 5:
            if (op.args_size() == 0) return who + "nothing";
            op.mutable_args(0)->set_arg_name(r.next() % 2 ? "x" : "weights");
            return who + "an input renamed";
        case 6:
            if (op.args_size() == 0) return who + "nothing";
            op.mutable_args(0)->add_arg_ops(g.op_node(0).op_name());
            return who + "an input doubled";
        case 7:
            if (op.args_size() == 0) return who + "nothing";
            op.mutable_args(0)->clear_arg_ops();
            return who + "an input emptied";
        case 8: {
            const int j = static_cast<int>(r.next() % static_cast<std::uint64_t>(n));
            const int k = static_cast<int>(r.next() % static_cast<std::uint64_t>(n));
            g.mutable_op_node()->SwapElements(j, k);
            return "ops " + std::to_string(j) + " and " + std::to_string(k) + " swapped";
        }
        case 9: {
            auto* t = op.mutable_output_tensor();
            if (t->tensor_dim_size() == 0) return who + "nothing";
            static const std::uint32_t dims[] = {0, 1, 2, 5, 0x80000000u};
            t->set_tensor_dim(static_cast<int>(r.next() % static_cast<std::uint64_t>(t->tensor_dim_size())),
                              dims[r.next() % 5]);
            return who + "a stored dimension changed";
        }
        case 10:
            op.mutable_output_tensor()->set_data_type(static_cast<int>(r.next() % 9) - 1);
            return who + "tensor data type changed";
        case 11:
            op.set_op_type(op_types[r.next() % 8]);
            return who + "retyped as " + op.op_type();
        case 12: {
            auto* child = g.mutable_subg_root()->add_subg_child();
            child->set_subgraph_name("extra");
            if (r.next() % 2) child->add_op_name(op.op_name()), child->add_subg_child()->set_subgraph_name("inner");
            return "a subgraph XIR cannot rebuild added";
        }
        default: {
            auto* child = g.mutable_subg_root()->add_subg_child();
            child->set_subgraph_name("a");
            child->add_op_name(op.op_name());
            if (r.next() % 2) {
                auto* other = g.mutable_subg_root()->add_subg_child();
                other->set_subgraph_name("b");
                other->add_op_name(op.op_name());
            }
            return "subgraphs over " + op.op_name();
        }
    }
}

}  // namespace sgp_test
