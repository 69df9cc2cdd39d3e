#pragma once
// The arithmetic of convolutions and linear layers. fp32 is the default and every fp32 result
// is what it was before bf16 existed. bf16 is mixed precision as torch.autocast(dtype=bfloat16)
// does it on the CPU: the operands of each product rounded to bfloat16, the sums in fp32, and
// everything else (weights, their gradients and the optimizer, batch norm, activations between
// layers) in fp32 (kernels/gemm_bf16.hpp).
#include <string>
#include <string_view>

#include "sgp/core/error.hpp"

namespace sgp {

enum class precision { fp32, bf16 };

inline std::string_view name_of(precision p) {
    return p == precision::bf16 ? "bf16" : "fp32";
}
// "fp32" or "bf16"; `where` names the flag or file in the error.
inline precision parse_precision(std::string_view s, const std::string& where) {
    if (s == "fp32") return precision::fp32;
    if (s == "bf16") return precision::bf16;
    fail(where, "unknown precision '" + std::string(s) + "' (fp32 or bf16)");
}

}  // namespace sgp
