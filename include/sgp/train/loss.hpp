#pragma once
// Softmax cross-entropy, mean over the batch, on logits stored class-major [K][N] (the
// network's output layout). Computed with the log-sum-exp shift, so large logits are safe.
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "sgp/core/error.hpp"

namespace sgp {

struct loss_result {
    double loss = 0;          // mean over the batch
    std::size_t correct = 0;  // arg-max equals the label
};

// Writes dlogits = (softmax - onehot) / N when dlogits is not null.
inline loss_result softmax_cross_entropy(const float* logits, const int* labels, std::size_t k, std::size_t n,
                                         float* dlogits) {
    loss_result r;
    for (std::size_t i = 0; i < n; ++i) {
        float m = -std::numeric_limits<float>::infinity();
        std::size_t arg = 0;
        for (std::size_t c = 0; c < k; ++c)
            if (logits[c * n + i] > m) {
                m = logits[c * n + i];
                arg = c;
            }
        double z = 0;
        for (std::size_t c = 0; c < k; ++c) z += std::exp(static_cast<double>(logits[c * n + i] - m));
        const double lse = m + std::log(z);
        // The last line of defence (loaders refuse such labels first): never index past k.
        if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= k)
            fail("softmax_cross_entropy", "label " + std::to_string(labels[i]) + " of image " + std::to_string(i) +
                                              " in the batch is not below the network's " + std::to_string(k) +
                                              " classes");
        const auto y = static_cast<std::size_t>(labels[i]);
        r.loss += lse - logits[y * n + i];
        r.correct += (arg == y);
        if (dlogits)
            for (std::size_t c = 0; c < k; ++c) {
                const double p = std::exp(static_cast<double>(logits[c * n + i]) - lse);
                dlogits[c * n + i] = static_cast<float>((p - (c == y ? 1.0 : 0.0)) / static_cast<double>(n));
            }
    }
    r.loss /= static_cast<double>(n);
    return r;
}

}  // namespace sgp
