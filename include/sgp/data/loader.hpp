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
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/core/shape.hpp"
#include "sgp/data/dataset.hpp"

namespace sgp {

struct loader_options {
    std::size_t batch = 64;
    bool shuffle = true;
    std::uint64_t seed = 1;
    std::size_t pad = 0;  // zero pixels added on every side
    // The network's input (channels, height, width). When given, the images are zero-padded
    // to it, centred (an odd difference puts the extra row/column at the bottom/right), and
    // images that do not fit or have other channels are refused; `pad` must then be 0.
    shape input{};
    std::size_t crop_padding = 0;            // random crop of the padded size from a further padding of this much
    bool flip = false;                       // random horizontal flip
    std::vector<float> mean{0.f}, std{1.f};  // per channel, or one value for all
};

// The same options for evaluation: in order, no crop, no flip.
inline loader_options evaluation_options(loader_options o) {
    o.shuffle = false;
    o.crop_padding = 0;
    o.flip = false;
    return o;
}

class batch_loader {
public:
    // A temporary data set would dangle: the loader keeps a pointer to it.
    batch_loader(const dataset&& d, loader_options o) = delete;
    // Not assignable: a validation_loader (data/split.hpp) must not be re-pointed at other
    // images through its base.
    batch_loader(const batch_loader&) = default;
    batch_loader& operator=(const batch_loader&) = delete;
    batch_loader& operator=(batch_loader&&) = delete;
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
        if (d.height == 0 || d.width == 0 || d.images.size() != d.size() * d.image_size())
            fail(d.source, std::to_string(d.images.size()) + " pixel bytes for " + std::to_string(d.size()) +
                               " images of " + size_text(d.channels, d.height, d.width));
        if (o_.input.c == 0) {
            out_h_ = d.height + 2 * o_.pad;
            out_w_ = d.width + 2 * o_.pad;
            top_ = left_ = o_.pad;
        } else {
            if (o_.pad) fail("batch_loader", "give the network's input size or pad, not both (pad is derived)");
            if (d.channels != o_.input.c || d.height > o_.input.h || d.width > o_.input.w)
                fail(d.source, "images of " + size_text(d.channels, d.height, d.width) +
                                   " do not fit the network's input of " +
                                   size_text(o_.input.c, o_.input.h, o_.input.w));
            out_h_ = o_.input.h;
            out_w_ = o_.input.w;
            top_ = (out_h_ - d.height) / 2;
            left_ = (out_w_ - d.width) / 2;
        }
        // Labels enter here: one at or above the class count would index past the network's
        // outputs in the loss.
        for (std::size_t i = 0; i < d.size(); ++i)
            if (d.labels[i] >= d.classes)
                fail(d.source, "label " + std::to_string(d.labels[i]) + " of image " + std::to_string(i) +
                                   " is not below the data set's " + std::to_string(d.classes) + " classes");
        order_.resize(d.size());
        start_epoch(0);
    }

    std::size_t channels() const { return d_->channels; }
    std::size_t height() const { return out_h_; }
    std::size_t width() const { return out_w_; }
    std::size_t image_size() const { return channels() * height() * width(); }
    std::size_t batches() const { return (d_->size() + o_.batch - 1) / o_.batch; }
    std::size_t size() const { return d_->size(); }
    const loader_options& options() const { return o_; }
    const dataset& data() const { return *d_; }

    // Refuses to feed a network whose input is not exactly what this loader produces, or
    // that has fewer outputs than the data set has classes; `who` names the caller.
    void check_network(const shape& in, std::size_t outputs, const std::string& who) const {
        if (in.c != channels() || in.h != height() || in.w != width())
            fail(d_->source, "the loader makes images of " + size_text(channels(), height(), width()) + " but " + who +
                                 " takes " + size_text(in.c, in.h, in.w) +
                                 " (set loader_options::input to the network's input)");
        if (d_->classes > outputs)
            fail(d_->source, "the data set has " + std::to_string(d_->classes) + " classes but " + who + " has " +
                                 std::to_string(outputs) + " outputs");
    }

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
                            static_cast<std::ptrdiff_t>(y) + dy - static_cast<std::ptrdiff_t>(top_);
                        const std::ptrdiff_t sx =
                            static_cast<std::ptrdiff_t>(ox) + dx - static_cast<std::ptrdiff_t>(left_);
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
    static std::string size_text(std::size_t c, std::size_t h, std::size_t w) {
        return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + " (channels x height x width)";
    }
    const dataset* d_;
    std::size_t out_h_ = 0, out_w_ = 0, top_ = 0, left_ = 0;
    loader_options o_;
    std::vector<std::size_t> order_;
    std::size_t pos_ = 0, epoch_ = 0;
};

}  // namespace sgp
