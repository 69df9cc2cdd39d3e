#pragma once
// An image classification data set held as 8-bit pixels, NCHW, with one label per image.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"

namespace sgp {

struct dataset {
    std::string source;  // where it was read from, for messages
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
};

}  // namespace sgp
