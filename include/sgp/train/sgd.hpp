#pragma once
// SGD with momentum, Nesterov and weight decay, with PyTorch's exact update rule:
//   g = grad + wd * p;  buf = momentum * buf + g  (buf = g on the first step);
//   g = nesterov ? g + momentum * buf : buf;       p -= lr * g
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/simd.hpp"
#include "sgp/layers/layer.hpp"

namespace sgp {

struct sgd {
    float lr = 0.01f;
    float momentum = 0.9f;
    float weight_decay = 0.f;
    bool nesterov = false;
};

// Momentum buffers keyed by parameter name (the checkpoint stores them under the same keys).
class sgd_state {
public:
    // One update of parameter `key` at learning rate lr. Returns whether every updated value
    // is finite, found in the same pass (a second pass over large weights would cost as much
    // memory traffic as a fifth of the step).
    bool step(const sgd& o, float lr, const std::string& key, const tensor_ref& t) {
        const std::size_t n = t.size();
        float* p = t.value;
        const float* g = t.grad;
        std::uint32_t top = 0;  // the largest |value| as bits: at or above 0x7f800000 is Inf or NaN
        auto track = [&top](float v) {
            std::uint32_t b;
            std::memcpy(&b, &v, sizeof b);
            top = std::max(top, b & 0x7fffffffu);
        };
        if (o.momentum == 0.f) {
            for (std::size_t i = 0; i < n; ++i) {
                p[i] -= lr * (g[i] + o.weight_decay * p[i]);
                track(p[i]);
            }
            return top < 0x7f800000u;
        }
        auto& buf = buffers_[key];
        // A buffer of another size belongs to the layer before pruning: start afresh.
        const bool first = buf.size() != n;
        if (first) buf.resize(n);
        float* b = buf.data();
        for (std::size_t i = 0; i < n; ++i) {
            const float d = g[i] + o.weight_decay * p[i];
            b[i] = first ? d : o.momentum * b[i] + d;
            p[i] -= lr * (o.nesterov ? d + o.momentum * b[i] : b[i]);
            track(p[i]);
        }
        return top < 0x7f800000u;
    }
    std::map<std::string, aligned_buffer<float>>& buffers() { return buffers_; }
    void clear() { buffers_.clear(); }

private:
    std::map<std::string, aligned_buffer<float>> buffers_;
};

}  // namespace sgp
