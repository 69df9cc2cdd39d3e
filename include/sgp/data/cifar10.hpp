#pragma once
// CIFAR-10's binary format: records of 1 label byte and 3072 pixel bytes (3 x 32 x 32,
// channel planes), in data_batch_1..5.bin and test_batch.bin.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/data/dataset.hpp"
#include "sgp/io/read_file.hpp"

namespace sgp {

inline constexpr std::size_t cifar10_record = 1 + 3 * 32 * 32;

// Appends the records of one binary file to d.
inline void read_cifar10_file(const std::string& path, dataset& d) {
    const std::string bytes = read_file_bytes(path);
    if (bytes.empty()) fail(path, "empty file");
    if (bytes.size() % cifar10_record)
        fail(path, "truncated or malformed: " + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                       std::to_string(cifar10_record) + "-byte CIFAR-10 records");
    const std::size_t n = bytes.size() / cifar10_record;
    for (std::size_t i = 0; i < n; ++i) {
        const auto* r = reinterpret_cast<const std::uint8_t*>(bytes.data() + i * cifar10_record);
        if (r[0] >= 10)
            fail(path,
                 "record " + std::to_string(i) + " has label " + std::to_string(r[0]) + " (CIFAR-10 labels are 0-9)");
        d.labels.push_back(r[0]);
        d.images.insert(d.images.end(), r + 1, r + cifar10_record);
    }
}

inline dataset load_cifar10_files(const std::vector<std::string>& paths) {
    dataset d;
    d.channels = 3;
    d.height = d.width = 32;
    d.classes = 10;
    for (const auto& p : paths) read_cifar10_file(p, d);
    d.source = paths.empty() ? "cifar-10" : paths.front();
    // The published splits by their file names: any test_batch file makes the set a test set.
    for (const auto& p : paths) {
        const auto name = std::filesystem::path(p).filename().string();
        if (name.rfind("test_batch", 0) == 0) d.part = data_part::test;
        if (name.rfind("data_batch", 0) == 0 && d.part != data_part::test) d.part = data_part::train;
    }
    return d;
}

// The training (data_batch_1..5.bin) or test (test_batch.bin) split from dir.
inline dataset load_cifar10(const std::string& dir, bool train) {
    std::vector<std::string> paths;
    if (train)
        for (int i = 1; i <= 5; ++i) paths.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    else
        paths.push_back(dir + "/test_batch.bin");
    auto d = load_cifar10_files(paths);
    d.part = train ? data_part::train : data_part::test;
    return d;
}

}  // namespace sgp
