#pragma once
// Reading a whole input file with errors that name it: missing, a directory, too large or
// unreadable (instead of std::ifstream's "basic_filebuf::underflow ... Is a directory").
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "sgp/core/checked.hpp"
#include "sgp/core/error.hpp"

namespace sgp {

// Checks that path names a regular file and returns its size.
inline std::uint64_t input_file_size(const std::string& path) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(st)) fail(path, "file not found");
    if (std::filesystem::is_directory(st)) fail(path, "is a folder, not a file");
    if (!std::filesystem::is_regular_file(st)) fail(path, "not a regular file");
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) fail(path, "cannot read its size (" + ec.message() + ")");
    return size;
}

// The whole file, at most max_bytes long.
inline std::string read_file_bytes(const std::string& path, std::uint64_t max_bytes = max_claimed_bytes) {
    const auto size = input_file_size(path);
    if (size > max_bytes)
        fail(path, std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                       "-byte limit for this kind of file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot open");
    std::string bytes(static_cast<std::size_t>(size), '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    if (static_cast<std::uint64_t>(in.gcount()) != size) fail(path, "read error (the file changed while being read?)");
    return bytes;
}

}  // namespace sgp
