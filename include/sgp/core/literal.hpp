#pragma once
// Values as C++ source text, for layer declarations and the static header.
#include <cstdio>
#include <string>

#include "sgp/core/error.hpp"

namespace sgp {

// A float as a C++ literal that reads back to the same float (9 significant digits).
inline std::string float_literal(float v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));
    std::string s = b;
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    if (s == "inf" || s == "-inf" || s == "nan" || s == "-nan")
        fail("emit_header", "a weight is not finite (" + s + "): the network diverged");
    return s + "f";
}

}  // namespace sgp
