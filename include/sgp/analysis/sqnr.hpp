#pragma once
// How much int8 loses, op by op: the signal-to-quantization-noise ratio of each op's output,
// the DPU's integers (target/int8_reference.hpp) dequantized against the folded network in
// float (quant::float_forward), summed over a set of images. The error is cumulative: an
// op's noise includes what the ops before it added, which is what the output sees.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/quant/calibrate.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/quant/qmodel.hpp"
#include "sgp/target/int8_reference.hpp"

namespace sgp::analysis {

struct op_error {
    double signal = 0, noise = 0;  // sums of squares of the float output and of the difference
    // 10 log10(signal / noise) in dB; +inf when int8 is exact, NaN without signal.
    double sqnr_db() const {
        if (signal == 0) return std::numeric_limits<double>::quiet_NaN();
        if (noise == 0) return std::numeric_limits<double>::infinity();
        return 10.0 * std::log10(signal / noise);
    }
};

// Per op of a calibrated `m`, over `count` images ([C][H][W] floats, `stride` apart).
inline std::vector<op_error> int8_error(const quant::qmodel& m, const float* images, std::size_t count,
                                        std::size_t stride) {
    if (count == 0) fail("analysis::int8_error", "no images");
    std::vector<op_error> e(m.ops.size());
    target::int8_reference ref(m);
    std::vector<std::vector<float>> acts;
    std::vector<float> out(m.outputs());
    for (std::size_t k = 0; k < count; ++k) {
        const float* x = images + k * stride;
        quant::float_forward(m, x, acts);
        ref.run(x, out.data(), [&](std::size_t op, const std::vector<std::int8_t>& y, int fp) {
            const auto& f = acts[op];
            for (std::size_t i = 0; i < y.size() && i < f.size(); ++i) {
                const double a = f[i], d = a - static_cast<double>(quant::dequantize(y[i], fp));
                e[op].signal += a * a;
                e[op].noise += d * d;
            }
        });
    }
    return e;
}

}  // namespace sgp::analysis
