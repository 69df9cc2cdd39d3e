#pragma once
// Batches from a data set, ready for a network's input buffer (channel-major [C][n][H][W]):
// seeded shuffling, zero padding (e.g. 28 -> 32), random crop with padding, horizontal flip
// and per-channel normalisation ((pixel / 255 - mean) / std). Every random choice is a
// function of (seed, epoch, image), so an epoch is the same whether or not training was
// interrupted before it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/data/dataset.hpp"

namespace sgp {

struct loader_options {
    std::size_t batch = 64;
    bool shuffle = true;
    std::uint64_t seed = 1;
    std::size_t pad = 0;                     // zero pixels added on every side
    std::size_t crop_padding = 0;            // random crop of the padded size from a further padding of this much
    bool flip = false;                       // random horizontal flip
    std::vector<float> mean{0.f}, std{1.f};  // per channel, or one value for all
};

class batch_loader {
public:
    // A temporary data set would dangle: the loader keeps a pointer to it.
    batch_loader(const dataset&& d, loader_options o) = delete;
    batch_loader(const dataset& d, loader_options o) : d_(&d), o_(std::move(o)) {
        if (d.size() == 0) fail(d.source, "the data set is empty");
        if (o_.batch == 0) fail("batch_loader", "batch size must be at least 1");
        auto check = [&](const std::vector<float>& v, const char* what) {
            if (v.size() != 1 && v.size() != d.channels)
                fail("batch_loader", std::string(what) + " has " + std::to_string(v.size()) + " values for " +
                                         std::to_string(d.channels) + " channels");
        };
        check(o_.mean, "mean");
        check(o_.std, "std");
        order_.resize(d.size());
        start_epoch(0);
    }

    std::size_t channels() const { return d_->channels; }
    std::size_t height() const { return d_->height + 2 * o_.pad; }
    std::size_t width() const { return d_->width + 2 * o_.pad; }
    std::size_t image_size() const { return channels() * height() * width(); }
    std::size_t batches() const { return (d_->size() + o_.batch - 1) / o_.batch; }
    std::size_t size() const { return d_->size(); }
    const loader_options& options() const { return o_; }

    void start_epoch(std::size_t epoch) {
        epoch_ = epoch;
        pos_ = 0;
        std::iota(order_.begin(), order_.end(), std::size_t{0});
        if (o_.shuffle) {
            rng r(mix64(o_.seed, epoch));
            r.shuffle(order_);
        }
    }

    // Fills x ([C][n][H][W], room for batch images) and labels; returns n, 0 after the last batch.
    std::size_t next(float* x, int* labels) {
        const std::size_t n = std::min(o_.batch, d_->size() - pos_);
        const std::size_t C = channels(), H = height(), W = width(), P = H * W;
        for (std::size_t b = 0; b < n; ++b) {
            const std::size_t idx = order_[pos_ + b];
            labels[b] = d_->labels[idx];
            // Random crop offset in [-crop, +crop] and flip, drawn per (seed, epoch, image).
            std::ptrdiff_t dy = 0, dx = 0;
            bool flip = false;
            if (o_.crop_padding || o_.flip) {
                rng r(mix64(mix64(o_.seed ^ 0xa11ce, epoch_), idx));
                const auto span = 2 * o_.crop_padding + 1;
                dy = static_cast<std::ptrdiff_t>(r.below(span)) - static_cast<std::ptrdiff_t>(o_.crop_padding);
                dx = static_cast<std::ptrdiff_t>(r.below(span)) - static_cast<std::ptrdiff_t>(o_.crop_padding);
                flip = o_.flip && (r.next() >> 63);
            }
            const std::uint8_t* src = d_->image(idx);
            for (std::size_t c = 0; c < C; ++c) {
                const float m = o_.mean.size() == 1 ? o_.mean[0] : o_.mean[c];
                const float s = 1.f / (o_.std.size() == 1 ? o_.std[0] : o_.std[c]);
                float* out = x + (c * n + b) * P;
                const std::uint8_t* plane = src + c * d_->height * d_->width;
                for (std::size_t y = 0; y < H; ++y)
                    for (std::size_t xx = 0; xx < W; ++xx) {
                        const std::size_t ox = flip ? W - 1 - xx : xx;
                        const std::ptrdiff_t sy =
                            static_cast<std::ptrdiff_t>(y) + dy - static_cast<std::ptrdiff_t>(o_.pad);
                        const std::ptrdiff_t sx =
                            static_cast<std::ptrdiff_t>(ox) + dx - static_cast<std::ptrdiff_t>(o_.pad);
                        const bool inside = sy >= 0 && sx >= 0 && sy < static_cast<std::ptrdiff_t>(d_->height) &&
                                            sx < static_cast<std::ptrdiff_t>(d_->width);
                        const float pix =
                            inside ? plane[static_cast<std::size_t>(sy) * d_->width + static_cast<std::size_t>(sx)]
                                   : 0.f;
                        out[y * W + xx] = (pix / 255.f - m) * s;
                    }
            }
        }
        pos_ += n;
        return n;
    }

private:
    const dataset* d_;
    loader_options o_;
    std::vector<std::size_t> order_;
    std::size_t pos_ = 0, epoch_ = 0;
};

}  // namespace sgp
