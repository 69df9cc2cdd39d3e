#pragma once
// What XIR's reader requires of the ops sgp writes and reads, so that a file which would make
// XIR abort (a FATAL check ends the process) is refused first with an sgp::error naming the op.
// XIR re-creates every op through its op registry: each input an op definition declares must
// have the right number of producers (and no other input names), required attributes must be
// present, the attributes its shape inference reads must have exactly the registered type, a
// source op's `data_type` must read as letters then a bit width ("FLOAT32" or "float32"), and
// the shape inference runs on the stored input shapes. The definitions below are those of XIR
// 3.5's built-in ops (src/xir/op/built_in_ops.cpp); the XIR cross-check of docs/deployment.md
// compares them with the registry of the real library.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/export/xir_graph.pb.h"

namespace sgp::xmodel {

using attr_type = sgp::xmodel::pb::AttrValue::ValueCase;

struct xir_input_def {
    std::string name;
    enum occurrence { required, optional, repeated, required_and_repeated } occurs = required;
};

struct xir_attr_def {
    std::string name;
    attr_type type;
    bool required = true;
    int list_length = 0;  // for vectors: the exact length, 0 for any
};

struct xir_op_def {
    std::string type;
    std::vector<xir_input_def> inputs;
    std::vector<xir_attr_def> attrs;
};

namespace detail {
using A = sgp::xmodel::pb::AttrValue;
inline std::vector<xir_attr_def> source_attrs(bool with_data) {
    std::vector<xir_attr_def> a{{"shape", A::kInt32Vec}, {"data_type", A::kStringValue}};
    if (with_data) a.push_back({"data", A::kBytesValue});
    return a;
}
inline std::vector<xir_attr_def> window_attrs() {
    return {{"kernel", A::kInt32Vec, true, 2},
            {"stride", A::kInt32Vec, true, 2},
            {"pad_mode", A::kStringValue},
            {"pad", A::kInt32Vec, false, 4}};
}
}  // namespace detail

// The op types sgp knows; any other type is passed through (XIR registers an unknown type as
// a custom op and does not check it either).
inline const std::vector<xir_op_def>& xir_op_defs() {
    using A = sgp::xmodel::pb::AttrValue;
    using I = xir_input_def;
    static const std::vector<xir_op_def> defs = [] {
        std::vector<xir_op_def> d;
        d.push_back({"data", {}, detail::source_attrs(false)});
        d.push_back({"const", {}, detail::source_attrs(true)});
        d.push_back({"fix",
                     {{"input"}},
                     {{"fix_point", A::kInt32Value},
                      {"bit_width", A::kInt32Value},
                      {"round_mode", A::kStringValue},
                      {"if_signed", A::kBoolValue}}});
        auto conv = detail::window_attrs();
        conv.push_back({"dilation", A::kInt32Vec, false, 2});
        conv.push_back({"group", A::kInt32Value, false});
        d.push_back({"conv2d", {{"input"}, {"weights"}, {"bias", I::optional}}, conv});
        d.push_back({"relu", {{"input"}}, {}});
        auto depthwise = detail::window_attrs();
        depthwise.push_back({"dilation", A::kInt32Vec, false, 2});
        d.push_back({"depthwise-conv2d", {{"input"}, {"weights"}, {"bias", I::optional}}, depthwise});
        d.push_back({"relu6", {{"input"}}, {}});
        auto pool = detail::window_attrs();
        pool.push_back({"global", A::kBoolValue, false});
        d.push_back({"maxpool2d", {{"input"}}, pool});
        pool.push_back({"count_include_pad", A::kBoolValue, false});
        pool.push_back({"count_include_invalid", A::kBoolValue, false});
        d.push_back({"avgpool2d", {{"input"}}, pool});
        d.push_back({"add", {{"input", I::required_and_repeated}}, {}});
        d.push_back({"mul", {{"input", I::required_and_repeated}}, {}});
        d.push_back({"concat", {{"input", I::required_and_repeated}}, {{"axis", A::kInt32Value}}});
        return d;
    }();
    return defs;
}

inline const xir_op_def* find_xir_op_def(std::string_view type) {
    for (const auto& d : xir_op_defs())
        if (d.type == type) return &d;
    return nullptr;
}

// The op types XIR 3.5 registers itself (its writer lists them in every file it writes). A
// file that uses one sgp has no definition of, and does not carry XIR's definitions, cannot be
// checked before XIR reads it.
inline constexpr std::array<std::string_view, 106> xir_builtin_op_types{"add",
                                                                        "argmax",
                                                                        "argmax-fix",
                                                                        "avgpool2d",
                                                                        "batchnorm",
                                                                        "cast",
                                                                        "celu",
                                                                        "concat",
                                                                        "concat-fix",
                                                                        "const",
                                                                        "const-fix",
                                                                        "conv1d",
                                                                        "conv2d",
                                                                        "conv2d-fix",
                                                                        "conv3d",
                                                                        "conv3d-fix",
                                                                        "correlation1d_elemwise",
                                                                        "correlation1d_elemwise-fix",
                                                                        "correlation2d_elemwise",
                                                                        "correlation2d_elemwise-fix",
                                                                        "cost_volume",
                                                                        "cost_volume-fix",
                                                                        "data",
                                                                        "data-fix",
                                                                        "depthwise-conv2d",
                                                                        "depthwise-conv2d-fix",
                                                                        "depthwise-conv3d",
                                                                        "depthwise-conv3d-fix",
                                                                        "depthwise-fix",
                                                                        "div",
                                                                        "download",
                                                                        "downsample-fix",
                                                                        "eltwise-fix",
                                                                        "elu",
                                                                        "exp",
                                                                        "fix",
                                                                        "fix2float",
                                                                        "flatten",
                                                                        "float2fix",
                                                                        "gelu",
                                                                        "groupnorm",
                                                                        "gstiling",
                                                                        "hard-sigmoid",
                                                                        "hard-sigmoid-fix",
                                                                        "hard-softmax",
                                                                        "hard-swish",
                                                                        "hard-tanh",
                                                                        "identity",
                                                                        "inner-product",
                                                                        "instancenorm",
                                                                        "l2_normalize",
                                                                        "leaky-relu",
                                                                        "matmul",
                                                                        "max",
                                                                        "maxpool1d",
                                                                        "maxpool2d",
                                                                        "min",
                                                                        "mish",
                                                                        "mul",
                                                                        "neg",
                                                                        "pad",
                                                                        "pad-fix",
                                                                        "pixel-shuffle",
                                                                        "pixel-shuffle-fix",
                                                                        "placeholder",
                                                                        "pool-fix",
                                                                        "prelu",
                                                                        "priorbox",
                                                                        "random_standard_normal",
                                                                        "reduction_max",
                                                                        "reduction_max-fix",
                                                                        "reduction_mean",
                                                                        "reduction_product",
                                                                        "reduction_sum",
                                                                        "relu",
                                                                        "relu6",
                                                                        "reorg",
                                                                        "reorg-fix",
                                                                        "reshape",
                                                                        "reshape-fix",
                                                                        "resize",
                                                                        "scale",
                                                                        "selu",
                                                                        "shape",
                                                                        "sigmoid",
                                                                        "softmax",
                                                                        "squeeze",
                                                                        "stack",
                                                                        "strided_slice",
                                                                        "strided_slice-fix",
                                                                        "sub",
                                                                        "swish",
                                                                        "tanh",
                                                                        "threshold",
                                                                        "tile-fix",
                                                                        "transpose",
                                                                        "transposed-conv2d",
                                                                        "transposed-conv2d-fix",
                                                                        "transposed-conv3d",
                                                                        "transposed-conv3d-fix",
                                                                        "transposed-depthwise-conv2d",
                                                                        "transposed-depthwise-conv2d-fix",
                                                                        "transposed-depthwise-conv3d",
                                                                        "transposed-depthwise-conv3d-fix",
                                                                        "upload",
                                                                        "upsample-fix"};
inline bool is_xir_builtin(std::string_view type) {
    return std::find(xir_builtin_op_types.begin(), xir_builtin_op_types.end(), type) != xir_builtin_op_types.end();
}

// The definition XIR's writer stored in a file for an op type (field 101): a compiled model
// carries those of every op XIR had registered. An attribute's type is its default value's.
inline xir_op_def from_stored_def(const sgp::xmodel::pb::OpDef& d) {
    xir_op_def def{d.name(), {}, {}};
    for (const auto& in : d.input_args())
        def.inputs.push_back(
            {in.name(), static_cast<xir_input_def::occurrence>(std::clamp(static_cast<int>(in.occur_type()), 0, 3))});
    for (const auto& a : d.attrs())
        def.attrs.push_back(
            {a.name(), a.default_value().value_case(), a.occur_type() == sgp::xmodel::pb::AttrDef::REQUIRED,
             a.default_value().value_case() == sgp::xmodel::pb::AttrValue::kInt32Vec ? a.list_length() : 0});
    return def;
}

// What XIR makes of a type it has not registered: a custom op that takes any number of
// "input"s and needs its output's shape and data_type as attributes.
inline xir_op_def custom_op_def(const std::string& type) {
    using A = sgp::xmodel::pb::AttrValue;
    return {type, {{"input", xir_input_def::repeated}}, {{"shape", A::kInt32Vec}, {"data_type", A::kStringValue}}};
}

// XIR's data-type spelling: letters then a bit width, "FLOAT32" or "float32".
struct xir_data_type {
    std::int32_t type = 6;  // the Tensor.data_type code: INT 0 ... BFLOAT 5, UNKNOWN 6
    int bits = 0;
};
inline std::optional<xir_data_type> parse_xir_data_type(std::string_view s) {
    std::size_t letters = 0;
    while (letters < s.size() && std::isalpha(static_cast<unsigned char>(s[letters]))) ++letters;
    if (letters == 0 || letters == s.size() || s.size() - letters > 4) return std::nullopt;
    int bits = 0;
    for (std::size_t i = letters; i < s.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
        bits = bits * 10 + (s[i] - '0');
    }
    // XIR accepts each name all upper or all lower case; anything else it calls UNKNOWN.
    static constexpr std::array<std::string_view, 6> upper{"INT", "UINT", "XINT", "XUINT", "FLOAT", "BFLOAT"},
        lower{"int", "uint", "xint", "xuint", "float", "bfloat"};
    const auto name = s.substr(0, letters);
    for (std::size_t t = 0; t < upper.size(); ++t)
        if (name == upper[t] || name == lower[t]) return xir_data_type{static_cast<std::int32_t>(t), bits};
    return xir_data_type{6, bits};
}

inline const char* attr_type_name(attr_type t) {
    using A = sgp::xmodel::pb::AttrValue;
    switch (t) {
        case A::kBoolValue:
            return "a bool";
        case A::kInt32Value:
            return "an int32";
        case A::kUint32Value:
            return "a uint32";
        case A::kInt64Value:
            return "an int64";
        case A::kUint64Value:
            return "a uint64";
        case A::kFloatValue:
            return "a float";
        case A::kDoubleValue:
            return "a double";
        case A::kStringValue:
            return "a string";
        case A::kBytesValue:
            return "bytes";
        case A::kInt32Vec:
            return "an int32 vector";
        case A::VALUE_NOT_SET:
            return "unset";
        default:
            return "another type";
    }
}

// One op against the definition XIR will use for it: the inputs it declares, each with a
// number of producers its occurrence allows (and no other inputs), the required attributes,
// and every declared attribute with exactly its type (and length, for fixed-size vectors).
inline void check_against_xir_def(const sgp::xmodel::pb::OPNode& op, const xir_op_def& d, const std::string& where) {
    const auto* def = &d;
    const std::string who = op.op_type() + " '" + op.op_name() + "'";
    for (const auto& arg : op.args()) {
        bool known = false;
        for (const auto& in : def->inputs) known = known || in.name == arg.arg_name();
        if (!known) fail(where, who + " has an input '" + arg.arg_name() + "' that XIR's " + op.op_type() + " lacks");
    }
    for (const auto& in : def->inputs) {
        int n = 0, args = 0;
        for (const auto& arg : op.args())
            if (arg.arg_name() == in.name) n += arg.arg_ops_size(), ++args;
        if (args > 1) fail(where, who + " lists input '" + std::string(in.name) + "' twice");
        const bool ok = in.occurs == xir_input_def::required   ? n == 1
                        : in.occurs == xir_input_def::optional ? n <= 1
                        : in.occurs == xir_input_def::repeated ? true
                                                               : n >= 1;
        if (!ok)
            fail(where, who + " has " + std::to_string(n) + " producers for input '" + std::string(in.name) +
                            "' (XIR requires " +
                            (in.occurs == xir_input_def::required   ? "exactly one"
                             : in.occurs == xir_input_def::optional ? "at most one"
                                                                    : "at least one") +
                            ")");
    }
    for (const auto& a : def->attrs) {
        const auto it = op.op_attr().find(std::string(a.name));
        if (it == op.op_attr().end()) {
            if (a.required) fail(where, who + " lacks the attribute '" + std::string(a.name) + "' XIR requires");
            continue;
        }
        if (it->second.value_case() != a.type)
            fail(where, who + ": attribute '" + std::string(a.name) + "' is " +
                            attr_type_name(it->second.value_case()) + " (field " +
                            std::to_string(static_cast<int>(it->second.value_case())) + "), XIR's is " +
                            attr_type_name(a.type) + " (field " + std::to_string(static_cast<int>(a.type)) + ")");
        if (a.list_length > 0 && it->second.int32_vec().value_size() != a.list_length)
            fail(where, who + ": attribute '" + std::string(a.name) + "' has " +
                            std::to_string(it->second.int32_vec().value_size()) + " values, XIR requires " +
                            std::to_string(a.list_length));
    }
}

}  // namespace sgp::xmodel
