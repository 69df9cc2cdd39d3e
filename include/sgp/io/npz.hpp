#pragma once
// .npz archives: a zip of .npy files, as numpy.savez writes (stored) and
// numpy.savez_compressed writes (deflated). sgp writes stored entries; it reads both,
// including the zip64 records NumPy emits, and checks every CRC.
#include <zlib.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sgp/core/checked.hpp"
#include "sgp/core/error.hpp"
#include "sgp/io/atomic_file.hpp"
#include "sgp/io/npy.hpp"
#include "sgp/io/read_file.hpp"

namespace sgp {

using npz_archive = std::map<std::string, npy_array>;  // key without ".npy"

namespace zip_detail {
inline void put16(std::string& s, std::uint32_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>((v >> 8) & 0xff);
}
inline void put32(std::string& s, std::uint32_t v) {
    put16(s, v & 0xffff);
    put16(s, v >> 16);
}
inline std::uint64_t get(std::string_view b, std::size_t off, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[off + i])) << (8 * i);
    return v;
}
inline std::uint32_t crc(std::string_view d) {
    uLong c = crc32(0L, Z_NULL, 0);
    std::size_t off = 0;
    while (off < d.size()) {  // crc32 takes a uInt length
        const auto n = static_cast<uInt>(std::min<std::size_t>(d.size() - off, 1u << 30));
        c = crc32(c, reinterpret_cast<const Bytef*>(d.data() + off), n);
        off += n;
    }
    return static_cast<std::uint32_t>(c);
}
// Inflates a raw deflate stream that must produce exactly `size` bytes (already checked
// against the limit): the output buffer is that size and inflation stops there.
inline std::string inflate_exactly(std::string_view in, std::uint64_t size, const std::string& path,
                                   const std::string& name) {
    std::string out(static_cast<std::size_t>(size), '\0');
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(path, "zlib failed to start");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());  // both below max_claimed_bytes < 4 GiB
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&zs, Z_FINISH);
    const auto produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != size) fail(path, "corrupt compressed entry '" + name + "'");
    return out;
}
}  // namespace zip_detail

inline std::string npz_encode(const npz_archive& a, const std::string& where) {
    using namespace zip_detail;
    std::string out, central;
    for (const auto& [key, arr] : a) {
        const std::string name = key + ".npy", body = npy_encode(arr);
        if (body.size() >= 0xffffffffULL || out.size() >= 0xffffffffULL)
            fail(where, "archive larger than 4 GiB is not supported");
        const std::uint32_t c = crc(body), offset = static_cast<std::uint32_t>(out.size());
        auto header = [&](std::string& s, bool central_entry) {
            put32(s, central_entry ? 0x02014b50 : 0x04034b50);
            if (central_entry) put16(s, 20);
            put16(s, 20);    // version needed
            put16(s, 0);     // flags
            put16(s, 0);     // stored
            put16(s, 0);     // time
            put16(s, 0x21);  // date 1980-01-01
            put32(s, c);
            put32(s, static_cast<std::uint32_t>(body.size()));
            put32(s, static_cast<std::uint32_t>(body.size()));
            put16(s, static_cast<std::uint32_t>(name.size()));
            put16(s, 0);  // extra
            if (central_entry) {
                put16(s, 0);  // comment
                put16(s, 0);  // disk
                put16(s, 0);  // internal attributes
                put32(s, 0);  // external attributes
                put32(s, offset);
            }
            s += name;
        };
        header(out, false);
        out += body;
        header(central, true);
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += central;
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, static_cast<std::uint32_t>(a.size()));
    put16(out, static_cast<std::uint32_t>(a.size()));
    put32(out, static_cast<std::uint32_t>(central.size()));
    put32(out, cd_offset);
    put16(out, 0);
    return out;
}

inline void save_npz(const std::string& path, const npz_archive& a) {
    write_file_atomic(path, npz_encode(a, path));
}

inline npz_archive npz_decode(std::string_view b, const std::string& path) {
    using namespace zip_detail;
    if (b.size() < 22) fail(path, "not a .npz file (too short for a zip archive)");
    // The end-of-central-directory record sits in the last 22 + 65535 bytes.
    std::size_t eocd = std::string_view::npos;
    for (std::size_t i = b.size() - 22 + 1; i-- > 0 && b.size() - i <= 22 + 65535;)
        if (get(b, i, 4) == 0x06054b50) {
            eocd = i;
            break;
        }
    if (eocd == std::string_view::npos) fail(path, "not a .npz file (no zip directory; truncated or not a zip)");
    std::uint64_t entries = get(b, eocd + 10, 2), cd_size = get(b, eocd + 12, 4), cd_off = get(b, eocd + 16, 4);
    if ((entries == 0xffff || cd_size == 0xffffffff || cd_off == 0xffffffff) && eocd >= 20 &&
        get(b, eocd - 20, 4) == 0x07064b50) {
        const std::uint64_t z = get(b, eocd - 20 + 8, 8);
        if (!in_range(z, 56, b.size()) || get(b, z, 4) != 0x06064b50) fail(path, "corrupt zip64 directory");
        entries = get(b, z + 32, 8);
        cd_size = get(b, z + 40, 8);
        cd_off = get(b, z + 48, 8);
    }
    // Every offset and size below comes from the file: each is checked against the buffer
    // with in_range (no wrap-around) before a byte is read through it.
    if (!in_range(cd_off, cd_size, b.size())) fail(path, "corrupt zip directory (points past the end of the file)");
    if (entries > cd_size / 46) fail(path, "corrupt zip directory (more entries than it has room for)");
    npz_archive out;
    std::uint64_t p = cd_off;
    const std::uint64_t cd_end = cd_off + cd_size;
    for (std::uint64_t e = 0; e < entries; ++e) {
        if (!in_range(p, 46, cd_end) || get(b, p, 4) != 0x02014b50) fail(path, "corrupt zip directory entry");
        const auto method = get(b, p + 10, 2);
        const auto c = static_cast<std::uint32_t>(get(b, p + 16, 4));
        std::uint64_t csize = get(b, p + 20, 4), usize = get(b, p + 24, 4);
        const auto nlen = get(b, p + 28, 2), xlen = get(b, p + 30, 2), clen = get(b, p + 32, 2);
        std::uint64_t local = get(b, p + 42, 4);
        if (!in_range(p, 46 + nlen + xlen + clen, cd_end)) fail(path, "corrupt zip directory entry");
        const std::string name(b.substr(p + 46, nlen));
        // zip64 extra field: the 64-bit values of whichever fields are 0xffffffff.
        const std::uint64_t extra_end = p + 46 + nlen + xlen;
        for (std::uint64_t x = p + 46 + nlen; in_range(x, 4, extra_end);) {
            const auto id = get(b, x, 2), len = get(b, x + 2, 2);
            if (!in_range(x + 4, len, extra_end))
                fail(path, "corrupt zip directory entry '" + name + "' (extra field)");
            if (id == 1) {
                std::uint64_t q = x + 4;
                const std::uint64_t end = x + 4 + len;
                if (usize == 0xffffffff && in_range(q, 8, end)) usize = get(b, q, 8), q += 8;
                if (csize == 0xffffffff && in_range(q, 8, end)) csize = get(b, q, 8), q += 8;
                if (local == 0xffffffff && in_range(q, 8, end)) local = get(b, q, 8), q += 8;
            }
            x += 4 + len;
        }
        p += 46 + nlen + xlen + clen;
        if (!in_range(local, 30, b.size()) || get(b, local, 4) != 0x04034b50)
            fail(path, "corrupt entry '" + name + "'");
        // The local header must agree with the directory: name, method and (unless deferred
        // to a data descriptor or to zip64 fields) sizes and CRC.
        const auto lnlen = get(b, local + 26, 2), lxlen = get(b, local + 28, 2);
        if (!in_range(local + 30, lnlen, b.size()) || b.substr(local + 30, lnlen) != name ||
            get(b, local + 8, 2) != method)
            fail(path, "corrupt entry '" + name + "' (its local header disagrees with the zip directory)");
        if (!(get(b, local + 6, 2) & 8)) {
            const auto lcrc = get(b, local + 14, 4), lcs = get(b, local + 18, 4), lus = get(b, local + 22, 4);
            if (lcrc != c || (lcs != 0xffffffff && lcs != csize) || (lus != 0xffffffff && lus != usize))
                fail(path, "corrupt entry '" + name + "' (its local header disagrees with the zip directory)");
        }
        const std::uint64_t data = local + 30 + lnlen + lxlen;
        if (!in_range(data, csize, b.size()))
            fail(path, "truncated: entry '" + name + "' runs past the end of the file");
        // The size an entry claims is checked before its buffer is allocated: against the
        // limit, and (deflated) against what its compressed bytes can possibly hold.
        check_claimed(usize, path + ":" + name, "the zip directory");
        std::string body;
        if (method == 0) {
            if (usize != csize)
                fail(path, "corrupt entry '" + name + "' (stored, but its sizes differ: " + std::to_string(csize) +
                               " and " + std::to_string(usize) + ")");
            body.assign(b.substr(data, csize));
        } else if (method == 8) {
            if (usize > csize * max_deflate_ratio + 1)
                fail(path, "corrupt entry '" + name + "' (" + std::to_string(csize) +
                               " deflated bytes cannot inflate to the " + std::to_string(usize) + " it claims)");
            body = inflate_exactly(b.substr(data, csize), usize, path, name);
        } else {
            fail(path, "entry '" + name + "' uses zip method " + std::to_string(method) +
                           " (only stored and deflate are supported)");
        }
        if (crc(body) != c) fail(path, "corrupt entry '" + name + "' (CRC mismatch)");
        if (name.size() < 4 || name.substr(name.size() - 4) != ".npy")
            fail(path, "entry '" + name + "' is not a .npy array");
        const std::string key = name.substr(0, name.size() - 4);
        out[key] = npy_decode(body, path + ":" + key);
    }
    return out;
}

inline npz_archive load_npz(const std::string& path) {
    return npz_decode(read_file_bytes(path), path);
}

}  // namespace sgp
