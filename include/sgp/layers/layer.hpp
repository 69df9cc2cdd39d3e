#pragma once
// What every layer shares: the run context handed to forward/backward, and the view of a
// parameter or buffer that the optimizer, checkpoints and (later) pruning visit.
//
// A layer declaration (e.g. conv2d<64, 3>) is an empty tag; `decl::bind<In>` is the layer
// that runs on input shape In, with compile-time out_shape, parameter_count and macs.
// Channel counts have a static capacity (the declaration) and a run-time active width
// (<= capacity) that every kernel loops over; parameters of a narrowed layer are stored
// compacted at the front of their capacity-sized buffers.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/cost.hpp"
#include "sgp/core/error.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/core/precision.hpp"
#include "sgp/core/shape.hpp"

namespace sgp {

// Sees activations as forward forms them (pruning's sparsity statistics): the input of
// every leaf node and the output of every formed node, by node id (core/graph.hpp).
// Activations are [channels][n][H][W].
struct activation_observer {
    virtual void input(std::size_t node, const float* x, std::size_t n) = 0;
    virtual void output(std::size_t node, const float* y, std::size_t n) = 0;

protected:
    ~activation_observer() = default;
};

struct run_context {
    thread_pool* pool = nullptr;
    bool training = false;
    std::uint64_t seed = 0;  // with `step`, seeds stochastic layers (dropout) deterministically
    std::uint64_t step = 0;
    std::size_t layer_index = 0;  // the node id of the running layer (composites: of their first node)
    // Training-mode batch statistics without anything else of training (dropout stays the
    // identity): batch norms re-estimating their running statistics (train/recalibrate.hpp).
    bool statistics_only = false;
    activation_observer* observer = nullptr;
    // In evaluation, sequential runs conv2d -> batch_norm (-> relu) as one pass (the batch norm
    // and ReLU applied as the convolution writes); the activations in between are then not
    // formed. false forms every activation.
    bool fuse = true;
    // The arithmetic of convolutions and linear layers (core/precision.hpp).
    sgp::precision precision = sgp::precision::fp32;
    aligned_buffer<float>* scratch = nullptr;   // column matrix of a convolution
    aligned_buffer<float>* scratch2 = nullptr;  // its gradient
};

enum class tensor_role { parameter, buffer };

// One named tensor of a layer, in PyTorch's shape order (e.g. conv weight [O, I, kh, kw]).
struct tensor_ref {
    std::string_view name;  // "weight", "bias", "running_mean", ...
    float* value = nullptr;
    float* grad = nullptr;  // null for buffers
    std::vector<std::size_t> dims;
    tensor_role role = tensor_role::parameter;
    std::int64_t* counter = nullptr;  // set instead of value for int64 scalars (num_batches_tracked)
    std::size_t size() const {
        std::size_t s = 1;
        for (auto d : dims) s *= d;
        return s;
    }
};

// Defaults a layer without parameters or state inherits: nothing to visit or initialise, and
// no parameters or multiply-adds at any width.
struct stateless_layer {
    static constexpr cost cost_at(std::size_t, std::size_t) { return {}; }
    void reserve(std::size_t) {}
    template <class F>
    void for_each_tensor(F&&) {}
    template <class R>
    void init(R&) {}
    static constexpr std::size_t parameter_count = 0;
    static constexpr std::size_t macs = 0;
    static constexpr std::size_t workspace(std::size_t) { return 0; }
};

namespace detail {

// Moves rows keep[0], keep[1], ... (each `row` values long, ascending indices) to rows
// 0, 1, ... in place. Ascending order makes every move go to a lower or equal address.
inline void compact_rows(float* p, std::size_t row, std::span<const std::size_t> keep) {
    for (std::size_t i = 0; i < keep.size(); ++i)
        if (keep[i] != i) std::memmove(p + i * row, p + keep[i] * row, row * sizeof(float));
}

// For a [rows][cols][block] array, keeps columns `keep` (ascending) of every row, giving
// [rows][keep.size()][block], compacted in place.
inline void compact_columns(float* p, std::size_t rows, std::size_t cols, std::size_t block,
                            std::span<const std::size_t> keep) {
    const std::size_t kept = keep.size();
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < kept; ++i)
            std::memmove(p + (r * kept + i) * block, p + (r * cols + keep[i]) * block, block * sizeof(float));
}

}  // namespace detail

}  // namespace sgp
