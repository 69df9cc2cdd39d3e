#pragma once
// A validation split held out of the training images, and the loader that reads it.
//
// Every decision of an experiment (undoing a pruning round, stopping training, choosing a
// threshold) is taken on a validation_loader; the functions that take such decisions accept
// nothing else, so a test set cannot be passed where one is taken: it does not compile. A
// validation_set exists only as hold_out()'s result, and hold_out() refuses a test split.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/rng.hpp"
#include "sgp/data/dataset.hpp"
#include "sgp/data/loader.hpp"

namespace sgp {

class validation_set;
struct train_validation;
train_validation hold_out(const dataset& training, std::size_t n, std::uint64_t seed);

// Training images set aside before training: never trained on.
class validation_set {
public:
    const dataset& data() const { return d_; }
    std::size_t size() const { return d_.size(); }

private:
    friend train_validation hold_out(const dataset&, std::size_t, std::uint64_t);
    explicit validation_set(dataset d) : d_(std::move(d)) {}
    dataset d_;
};

struct train_validation {
    dataset train;
    validation_set validation;
};

// n images drawn by `seed` from `training` become the validation set (in their original
// order); the others, in their original order, the training set. The same (data, n, seed)
// always give the same split.
inline train_validation hold_out(const dataset& training, std::size_t n, std::uint64_t seed) {
    if (training.part == data_part::test)
        fail(training.source, "is a test split: a validation split is held out of training images only");
    if (n == 0 || n >= training.size())
        fail(training.source, "cannot hold out " + std::to_string(n) + " of its " + std::to_string(training.size()) +
                                  " images for validation (at least 1, and some must remain to train on)");
    std::vector<std::size_t> order(training.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    rng r(mix64(seed, 0x5a11d));
    r.shuffle(order);
    std::vector<char> held(training.size(), 0);
    for (std::size_t i = 0; i < n; ++i) held[order[i]] = 1;

    auto take = [&](char which, const std::string& what) {
        dataset d;
        d.source = training.source + " (" + what + ")";
        d.part = training.part;
        d.channels = training.channels, d.height = training.height, d.width = training.width;
        d.classes = training.classes;
        const std::size_t is = training.image_size();
        for (std::size_t i = 0; i < training.size(); ++i) {
            if (held[i] != which) continue;
            d.images.insert(d.images.end(), training.image(i), training.image(i) + is);
            d.labels.push_back(training.labels[i]);
        }
        return d;
    };
    const std::string tag = std::to_string(n) + " held out by seed " + std::to_string(seed);
    return train_validation{take(0, "training images, " + tag), validation_set(take(1, "validation images, " + tag))};
}

// Reads a validation set for evaluation: unshuffled, unaugmented.
class validation_loader : public batch_loader {
public:
    validation_loader(const validation_set&& v, loader_options o) = delete;  // would dangle
    validation_loader(const validation_set& v, loader_options o)
        : batch_loader(v.data(), evaluation_options(std::move(o))) {}
};

}  // namespace sgp
