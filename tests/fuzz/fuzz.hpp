#pragma once
// What every fuzz target shares: sgp::error is the expected refusal of a bad input; any other
// exception escapes to libFuzzer (reported as a crash), as do sanitizer reports and signals.
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "sgp/core/error.hpp"

namespace sgp_fuzz {

inline std::string_view bytes(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// For APIs that take paths: the input in a file of this process's own (one per target).
inline std::string write_temp(std::string_view b, const std::string& name) {
    struct remover {  // the file goes when the fuzzer exits
        std::string path;
        ~remover() {
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
    };
    static const remover file{
        (std::filesystem::temp_directory_path() / ("sgp-fuzz-" + std::to_string(::getpid()) + "-" + name)).string()};
    const std::string& path = file.path;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
    return path;
}

// The bytes as a gzip file (zlib's default level, as `gzip` writes).
inline std::string gzip(std::string_view in) {
    std::string out(compressBound(static_cast<uLong>(in.size())) + 32, '\0');
    z_stream zs{};
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // 15 + 16: the gzip wrapper
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

template <class F>
int refuse_or_pass(F&& f) {
    try {
        f();
    } catch (const sgp::error&) {
        // The expected refusal.
    }
    return 0;
}

}  // namespace sgp_fuzz
