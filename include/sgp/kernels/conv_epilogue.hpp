#pragma once
// What follows a convolution, applied while its output is written (the direct kernels, and
// conv2d over a GEMM's output): bias, batch norm in evaluation mode, ReLU or ReLU6.
#include <cmath>
#include <cstddef>

#include "sgp/core/simd.hpp"

namespace sgp::kernels {

// What follows the convolution, applied while its output is written: y = relu((v + bias) *
// scale + shift), each part optional. With scale/shift of a batch norm in evaluation mode this
// is the fused conv -> batch_norm -> relu; the arithmetic is the unfused layers' own. relu6
// clamps to [0, 6] instead (conv -> batch_norm -> relu6); it is looked at only when relu is
// false, so set one of the two.
struct conv_epilogue {
    const float* bias = nullptr;
    const float* scale = nullptr;
    const float* shift = nullptr;
    bool relu = false;
    bool relu6 = false;

    // The epilogue of one output channel.
    struct channel {
        simd::vec b, a, t;
        float bs, as, ts;
        const conv_epilogue* e;
        simd::vec operator()(simd::vec v) const {
            if (e->bias) v = v + b;
            if (e->scale) v = simd::fma(v, a, t);
            if (e->relu)
                v = simd::relu(v);
            else if (e->relu6)
                v = simd::relu6(v);
            return v;
        }
        float operator()(float v) const {
            if (e->bias) v = v + bs;
            if (e->scale) v = std::fma(v, as, ts);  // fused, as the vector lanes
            if (e->relu)
                v = v > 0.f ? v : 0.f;
            else if (e->relu6)
                v = simd::relu6(v);
            return v;
        }
    };
    channel of(std::size_t m) const {
        const float bs = bias ? bias[m] : 0.f, as = scale ? scale[m] : 1.f, ts = shift ? shift[m] : 0.f;
        return {simd::vec(bs), simd::vec(as), simd::vec(ts), bs, as, ts, this};
    }
    // dst[i] = f(src[i]) for output channel m.
    void apply(std::size_t m, const float* src, float* dst, std::size_t len) const {
        const channel f = of(m);
        std::size_t i = 0;
        for (; i + simd::width <= len; i += simd::width) f(simd::vec::load_unaligned(src + i)).store_unaligned(dst + i);
        for (; i < len; ++i) dst[i] = f(src[i]);
    }
    bool empty() const { return !bias && !scale && !relu && !relu6; }
};

}  // namespace sgp::kernels
