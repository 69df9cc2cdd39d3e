#pragma once
// NumPy's .npy format (version 1.0 written; 1.0 to 3.0 read): magic, a header dict with
// dtype, order and shape, then the raw little-endian data. sgp writes float32 and int64.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sgp/core/checked.hpp"
#include "sgp/core/error.hpp"

namespace sgp {

struct npy_array {
    std::string dtype;  // NumPy descr: "<f4", "<f8", "<i8", "|u1", ...
    std::vector<std::size_t> shape;
    std::string data;  // raw bytes

    std::size_t count() const {
        std::size_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
    // The bytes per element of a descr such as "<f4" (0 when it is not one).
    static std::size_t item_size(std::string_view dtype) {
        if (dtype.size() < 3 || dtype.size() > 4) return 0;
        std::size_t n = 0;
        for (char c : dtype.substr(2)) {
            if (c < '0' || c > '9') return 0;
            n = n * 10 + static_cast<std::size_t>(c - '0');
        }
        return n;
    }

    static npy_array from_floats(const float* p, std::vector<std::size_t> shape) {
        npy_array a{"<f4", std::move(shape), {}};
        a.data.assign(reinterpret_cast<const char*>(p), a.count() * sizeof(float));
        return a;
    }
    static npy_array from_int64(std::int64_t v) {
        npy_array a{"<i8", {}, {}};
        a.data.assign(reinterpret_cast<const char*>(&v), sizeof v);
        return a;
    }

    static npy_array from_indices(const std::vector<std::size_t>& v) {
        npy_array a{"<i8", {v.size()}, {}};
        for (auto x : v) {
            const auto i = static_cast<std::int64_t>(x);
            a.data.append(reinterpret_cast<const char*>(&i), sizeof i);
        }
        return a;
    }
    std::vector<std::size_t> to_indices(const std::string& where) const {
        if (dtype != "<i8" || shape.size() != 1) fail(where, "expected a 1-d int64 array");
        std::vector<std::size_t> out(count());
        for (std::size_t i = 0; i < out.size(); ++i) {
            std::int64_t v;
            std::memcpy(&v, data.data() + i * sizeof v, sizeof v);
            if (v < 0) fail(where, "negative index " + std::to_string(v));
            out[i] = static_cast<std::size_t>(v);
        }
        return out;
    }

    // The values as float32 (float32 and float64 arrays), or an error naming `where`.
    std::vector<float> to_floats(const std::string& where) const {
        std::vector<float> out(count());
        if (dtype == "<f4") {
            if (!out.empty()) std::memcpy(out.data(), data.data(), out.size() * sizeof(float));  // no null pointers
        } else if (dtype == "<f8") {
            for (std::size_t i = 0; i < out.size(); ++i) {
                double d;
                std::memcpy(&d, data.data() + i * sizeof d, sizeof d);
                out[i] = static_cast<float>(d);
            }
        } else {
            fail(where, "dtype " + dtype + " where floating point (<f4 or <f8) was expected");
        }
        return out;
    }
    std::int64_t to_int64(const std::string& where) const {
        if (count() != 1) fail(where, "expected a single integer, found " + std::to_string(count()) + " values");
        if (dtype == "<i8") {
            std::int64_t v;
            std::memcpy(&v, data.data(), sizeof v);
            return v;
        }
        if (dtype == "<i4") {
            std::int32_t v;
            std::memcpy(&v, data.data(), sizeof v);
            return v;
        }
        fail(where, "dtype " + dtype + " where an integer (<i8 or <i4) was expected");
    }
};

inline std::string shape_string(const std::vector<std::size_t>& s) {
    std::string r = "(";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + (s.size() == 1 ? ",)" : ")");
}

inline std::string npy_encode(const npy_array& a) {
    std::string dict = "{'descr': '" + a.dtype + "', 'fortran_order': False, 'shape': " + shape_string(a.shape) + ", }";
    // Pad so that magic(6) + version(2) + length(2) + header is a multiple of 64.
    const std::size_t total = (10 + dict.size() + 1 + 63) / 64 * 64;
    dict.append(total - 10 - dict.size() - 1, ' ');
    dict += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(dict.size() & 0xff);
    out += static_cast<char>(dict.size() >> 8);
    return out + dict + a.data;
}

inline npy_array npy_decode(std::string_view b, const std::string& where) {
    if (b.size() < 10 || b.substr(0, 6) != std::string_view("\x93NUMPY", 6))
        fail(where, "not a .npy array (bad magic)");
    const unsigned major = static_cast<unsigned char>(b[6]);
    std::size_t hlen = 0, off = 0;
    if (major == 1) {
        hlen = static_cast<unsigned char>(b[8]) | static_cast<std::size_t>(static_cast<unsigned char>(b[9])) << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (b.size() < 12) fail(where, "truncated .npy header");
        for (int i = 0; i < 4; ++i) hlen |= static_cast<std::size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
        off = 12;
    } else {
        fail(where, ".npy version " + std::to_string(major) + " is not supported");
    }
    if (!in_range(off, hlen, b.size())) fail(where, "truncated .npy header");
    const std::string h(b.substr(off, hlen));
    auto value_of = [&](const std::string& key) -> std::string {
        const auto k = h.find("'" + key + "'");
        if (k == std::string::npos) fail(where, "the .npy header has no '" + key + "'");
        auto p = h.find(':', k);
        if (p == std::string::npos) fail(where, "malformed .npy header");
        ++p;
        while (p < h.size() && h[p] == ' ') ++p;
        return h.substr(p);
    };
    npy_array a;
    {
        const std::string v = value_of("descr");
        if (v.empty() || v[0] != '\'') fail(where, "malformed dtype in the .npy header");
        const auto e = v.find('\'', 1);
        if (e == std::string::npos) fail(where, "malformed dtype in the .npy header");
        a.dtype = v.substr(1, e - 1);
        if (a.dtype.size() < 3 || (a.dtype[0] != '<' && a.dtype[0] != '|'))
            fail(where, "dtype " + a.dtype + " is not little-endian");
    }
    if (value_of("fortran_order").rfind("False", 0) != 0) fail(where, "Fortran-ordered arrays are not supported");
    {
        const std::string v = value_of("shape");
        if (v.empty() || v[0] != '(') fail(where, "malformed shape in the .npy header");
        const auto e = v.find(')');
        if (e == std::string::npos) fail(where, "malformed shape in the .npy header");
        std::string inner = v.substr(1, e - 1);
        std::size_t p = 0;
        while (p < inner.size()) {
            while (p < inner.size() && (inner[p] == ' ' || inner[p] == ',')) ++p;
            if (p >= inner.size()) break;
            std::size_t q = p;
            while (q < inner.size() && inner[q] >= '0' && inner[q] <= '9') ++q;
            if (q == p) fail(where, "malformed shape in the .npy header");
            std::uint64_t dim = 0;
            for (std::size_t i = p; i < q; ++i)
                dim = checked_add(checked_mul(dim, 10, where, "a dimension in the .npy header"),
                                  static_cast<std::uint64_t>(inner[i] - '0'), where, "a dimension in the .npy header");
            a.shape.push_back(static_cast<std::size_t>(dim));
            p = q;
        }
    }
    const std::size_t item = npy_array::item_size(a.dtype);
    if (item == 0) fail(where, "unknown dtype " + a.dtype);
    std::uint64_t need = item;
    for (auto d : a.shape) need = checked_mul(need, d, where, "the size of shape " + shape_string(a.shape));
    check_claimed(need, where, "shape " + shape_string(a.shape));
    const std::size_t have = b.size() - off - hlen;
    if (have < need)
        fail(where, "truncated: shape " + shape_string(a.shape) + " needs " + std::to_string(need) + " bytes, " +
                        std::to_string(have) + " present");
    a.data.assign(b.substr(off + hlen, need));
    return a;
}

}  // namespace sgp
