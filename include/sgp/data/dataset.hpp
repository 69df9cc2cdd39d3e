#pragma once
// An image classification data set held as 8-bit pixels, NCHW, with one label per image.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"

namespace sgp {

// Which of a benchmark's published splits a data set came from. A validation split can only
// be held out of training images (data/split.hpp): a test set must never steer a decision.
enum class data_part { unknown, train, test };

struct dataset {
    std::string source;  // where it was read from, for messages
    data_part part = data_part::unknown;
    std::size_t channels = 0, height = 0, width = 0, classes = 10;
    std::vector<std::uint8_t> images;  // [N][C][H][W]
    std::vector<std::uint8_t> labels;  // [N]

    std::size_t size() const { return labels.size(); }
    std::size_t image_size() const { return channels * height * width; }
    const std::uint8_t* image(std::size_t i) const { return images.data() + i * image_size(); }

    // The first n images (all if n is 0 or larger than the set).
    dataset head(std::size_t n) const {
        dataset d = *this;
        if (n && n < size()) {
            d.images.resize(n * image_size());
            d.labels.resize(n);
            d.source += " (first " + std::to_string(n) + ")";
        }
        return d;
    }
    // Images first .. first + n - 1 (refused past the end).
    dataset slice(std::size_t first, std::size_t n) const {
        if (first > size() || n > size() - first)
            fail(source, "images " + std::to_string(first) + " to " + std::to_string(first + n) + " asked, it has " +
                             std::to_string(size()));
        dataset d;
        d.source = source + " (" + std::to_string(n) + " images from " + std::to_string(first) + ")";
        d.part = part;
        d.channels = channels, d.height = height, d.width = width, d.classes = classes;
        const auto* p = images.data() + first * image_size();
        d.images.assign(p, p + n * image_size());
        d.labels.assign(labels.begin() + static_cast<std::ptrdiff_t>(first),
                        labels.begin() + static_cast<std::ptrdiff_t>(first + n));
        return d;
    }
};

}  // namespace sgp
