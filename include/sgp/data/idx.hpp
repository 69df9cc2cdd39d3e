#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: a big-endian
// header (0, 0, type 0x08 = ubyte, number of dims, dims) followed by the bytes.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sgp/core/checked.hpp"
#include "sgp/core/error.hpp"
#include "sgp/data/dataset.hpp"
#include "sgp/io/read_file.hpp"

namespace sgp {

struct idx_array {
    std::vector<std::uint32_t> dims;
    std::vector<std::uint8_t> data;
};

// Reads an IDX file through zlib, which passes plain files through unchanged. The header
// is read first; the data's size it declares is checked (no overflow, within
// max_claimed_bytes, within what the file can hold: its size when plain, deflate's best
// ratio when compressed) before the buffer is allocated, and no more than that is inflated.
inline idx_array read_idx(const std::string& path) {
    const std::uint64_t file_size = input_file_size(path);
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) fail(path, "cannot open");
    struct closer {
        gzFile f;
        ~closer() {
            if (f) gzclose(f);
        }
    } guard{f};
    // Reads up to n bytes; returns how many (fewer only at the end of the stream).
    auto read = [&](std::uint8_t* dst, std::size_t n) {
        std::size_t got = 0;
        while (got < n) {
            const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 20));
            const int r = gzread(f, dst + got, chunk);
            if (r < 0) {
                int code = 0;
                fail(path, std::string("corrupt compressed data (") + gzerror(f, &code) + ")");
            }
            if (r == 0) break;
            got += static_cast<std::size_t>(r);
        }
        return got;
    };
    std::uint8_t head[4 + 4 * 4];
    const std::size_t h = read(head, 4);
    if (h < 4) fail(path, "truncated: " + std::to_string(h) + " bytes, too short for an IDX header");
    if (head[0] != 0 || head[1] != 0) fail(path, "not an IDX file (the magic number must start with two zero bytes)");
    if (head[2] != 0x08)
        fail(path, "IDX element type 0x" + std::to_string(head[2]) + " is not supported (only unsigned bytes, 0x08)");
    const std::size_t nd = head[3];
    if (nd == 0 || nd > 4) fail(path, "IDX file declares " + std::to_string(nd) + " dimensions (expected 1 to 4)");
    if (read(head + 4, 4 * nd) < 4 * nd) fail(path, "truncated: the header's dimensions are cut off");
    idx_array a;
    std::uint64_t total = 1;
    for (std::size_t d = 0; d < nd; ++d) {
        const std::uint8_t* p = head + 4 + 4 * d;
        const std::uint32_t v =
            (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
        a.dims.push_back(v);
        total = checked_mul(total, v, path, "the data size the IDX header declares");
    }
    check_claimed(total, path, "the IDX header");
    const std::uint64_t header = 4 + 4 * nd;
    const bool plain = gzdirect(f) == 1;
    const std::uint64_t room = plain ? file_size - header : checked_mul(file_size, max_deflate_ratio, path, "size");
    if (total > room)
        fail(path, "truncated: the header promises " + std::to_string(total) + " bytes of data, the file holds " +
                       (plain ? std::to_string(room) : "at most " + std::to_string(room) + " when inflated"));
    a.data.resize(static_cast<std::size_t>(total));
    const std::size_t have = read(a.data.data(), a.data.size());
    if (have < total)
        fail(path, "truncated: the header promises " + std::to_string(total) + " bytes of data, the file holds " +
                       std::to_string(have));
    std::uint8_t extra[1 << 12];
    if (const std::size_t more = read(extra, sizeof extra); more > 0)
        fail(path, "malformed: " + std::string(more == sizeof extra ? "at least " : "") + std::to_string(more) +
                       " bytes after the data the header describes");
    // A gzip stream cut short reads as a clean end in zlib; gzclose reports it.
    int code = 0;
    const std::string msg = gzerror(f, &code);
    guard.f = nullptr;
    const int rc = gzclose(f);
    if (code != Z_OK && code != Z_STREAM_END) fail(path, "corrupt compressed data (" + msg + ")");
    if (rc == Z_BUF_ERROR) fail(path, "truncated: the compressed stream ends early");
    if (rc != Z_OK) fail(path, "error while reading the compressed stream");
    return a;
}

// An image file ([N][H][W]) and a label file ([N]) as a data set of 1-channel images.
inline dataset load_idx(const std::string& images_path, const std::string& labels_path, std::size_t classes = 10) {
    auto im = read_idx(images_path);
    auto lb = read_idx(labels_path);
    if (im.dims.size() != 3)
        fail(images_path, "expected 3 dimensions (images x rows x columns), found " + std::to_string(im.dims.size()));
    if (im.dims[1] == 0 || im.dims[2] == 0)
        fail(images_path, "images of " + std::to_string(im.dims[1]) + "x" + std::to_string(im.dims[2]) + " pixels");
    if (lb.dims.size() != 1)
        fail(labels_path, "expected 1 dimension (labels), found " + std::to_string(lb.dims.size()));
    if (im.dims[0] != lb.dims[0])
        fail(labels_path,
             std::to_string(lb.dims[0]) + " labels for " + std::to_string(im.dims[0]) + " images in " + images_path);
    for (std::size_t i = 0; i < lb.data.size(); ++i)
        if (lb.data[i] >= classes)
            fail(labels_path, "label " + std::to_string(lb.data[i]) + " at index " + std::to_string(i) +
                                  " is not below " + std::to_string(classes));
    dataset d;
    d.source = images_path;
    // The published splits by their file names (t10k-*, train-*); anything else stays unknown.
    const auto name = std::filesystem::path(images_path).filename().string();
    if (name.rfind("t10k", 0) == 0) d.part = data_part::test;
    if (name.rfind("train", 0) == 0) d.part = data_part::train;
    d.channels = 1;
    d.height = im.dims[1];
    d.width = im.dims[2];
    d.classes = classes;
    d.images = std::move(im.data);
    d.labels = std::move(lb.data);
    return d;
}

inline constexpr const char* fashion_mnist_default_dir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST's `train` or `t10k` split from dir (.gz or uncompressed files).
inline dataset load_fashion_mnist(const std::string& dir, bool train) {
    const std::string stem = train ? "train" : "t10k";
    auto pick = [&](const std::string& name) {
        const std::string p = dir + "/" + name;
        if (std::filesystem::exists(p + ".gz")) return p + ".gz";
        if (std::filesystem::exists(p)) return p;
        fail(p + ".gz",
             "file not found (install Debian's dataset-fashion-mnist package, or give the folder that holds the "
             "Fashion-MNIST IDX files)");
    };
    auto d = load_idx(pick(stem + "-images-idx3-ubyte"), pick(stem + "-labels-idx1-ubyte"));
    d.part = train ? data_part::train : data_part::test;
    return d;
}

}  // namespace sgp
