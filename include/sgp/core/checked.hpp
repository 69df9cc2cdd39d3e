#pragma once
// Arithmetic on sizes that come from files: every product, sum and offset a file claims is
// checked before it is used, so a hostile header cannot wrap an offset or a buffer size.
#include <cstdint>
#include <limits>
#include <string>

#include "sgp/core/error.hpp"

namespace sgp {

// The most bytes any single array, entry or data file may claim (a checkpoint of the source
// VGG13BN is ~226 MB, Fashion-MNIST's training images 47 MB): a file claiming more is refused
// before anything is allocated.
inline constexpr std::uint64_t max_claimed_bytes = std::uint64_t{1} << 31;

// Deflate's best case is 1032:1 (RFC 1951 stores a run of 258 bytes in about 2 bits); a
// stream claiming to inflate to more than this from its compressed size is corrupt.
inline constexpr std::uint64_t max_deflate_ratio = 1032;

// a * b, or an error naming `where` when it does not fit in 64 bits.
inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, const std::string& where, const std::string& what) {
    if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b)
        fail(where, what + " overflows (" + std::to_string(a) + " x " + std::to_string(b) + ")");
    return a * b;
}

inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, const std::string& where, const std::string& what) {
    if (a > std::numeric_limits<std::uint64_t>::max() - b)
        fail(where, what + " overflows (" + std::to_string(a) + " + " + std::to_string(b) + ")");
    return a + b;
}

// True when [offset, offset + length) lies inside a buffer of `size` bytes (no wrap-around).
constexpr bool in_range(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
    return offset <= size && length <= size - offset;
}

// Refuses a claimed size above max_claimed_bytes, naming the file and what claimed it.
inline void check_claimed(std::uint64_t bytes, const std::string& where, const std::string& what) {
    if (bytes > max_claimed_bytes)
        fail(where, what + " claims " + std::to_string(bytes) + " bytes, more than the " +
                        std::to_string(max_claimed_bytes) + "-byte limit (corrupt or not a file sgp reads)");
}

}  // namespace sgp
