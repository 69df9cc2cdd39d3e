#pragma once
// The one place that includes xtensor: sgp's tensors seen as xtensor expressions, for users
// who inspect weights or feed images as xt::xtensor. Kernels never go through these views.
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include "sgp/layers/layer.hpp"

namespace sgp {

// A non-owning xtensor view of a parameter or buffer, in PyTorch's shape order.
inline auto view(const tensor_ref& t) {
    return xt::adapt(t.value, t.size(), xt::no_ownership(), t.dims);
}

// Class scores [N][classes] for NCHW images [N][C][H][W], in evaluation mode.
template <class Net>
xt::xtensor<float, 2> predict(Net& net, const xt::xtensor<float, 4>& images, thread_pool* pool = nullptr) {
    const std::size_t n = images.shape(0);
    if (images.shape(1) != Net::input_shape.c || images.shape(2) != Net::input_shape.h ||
        images.shape(3) != Net::input_shape.w)
        fail("predict", "images of shape (" + std::to_string(images.shape(1)) + ", " + std::to_string(images.shape(2)) +
                            ", " + std::to_string(images.shape(3)) + "), the network takes (" +
                            std::to_string(Net::input_shape.c) + ", " + std::to_string(Net::input_shape.h) + ", " +
                            std::to_string(Net::input_shape.w) + ")");
    net.set_input_nchw(images.data(), n);
    run_context cx;
    cx.pool = pool;
    const float* out = net.forward(n, cx);
    const std::size_t k = net.widths().back();
    xt::xtensor<float, 2> r = xt::zeros<float>({n, k});
    for (std::size_t c = 0; c < k; ++c)
        for (std::size_t i = 0; i < n; ++i) r(i, c) = out[c * n + i];
    return r;
}

}  // namespace sgp
