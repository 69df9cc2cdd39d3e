#pragma once
// One call site, three places to run a declared network: runtime<Net, Target> with
//   cpu_target   the float network (sgp's kernels, optional threads),
//   int8_target  the DPU's integer arithmetic on the host (target/int8_target.hpp),
//   dpu_target   the compiled .xmodel on the board through VART (target/dpu_runtime.hpp,
//                built only where XIR and VART are found).
// Each takes images as [C][H][W] floats, one after another, and gives Net's outputs per image:
//   auto scores = rt(image);            // std::array<float, outputs>
//   rt.run(images, scores, n);          // n images
// The network type fixes the shapes at compile time; a model or file that does not match them
// is refused when the runtime is made.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "sgp/core/error.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/layers/layer.hpp"
#include "sgp/quant/qmodel.hpp"
#include "sgp/target/int8_target.hpp"

namespace sgp {

struct cpu_target {};
struct int8_target {};
struct dpu_target {};

template <class Net, class Target>
class runtime;

namespace detail {
// What every runtime shares: the per-image call on top of run(x, y, n).
template <class Net, class Derived>
struct runtime_calls {
    static constexpr std::size_t inputs = Net::input_shape.size();
    static constexpr std::size_t outputs = Net::output_shape.size();
    std::array<float, outputs> operator()(const float* image) {
        std::array<float, outputs> y{};
        static_cast<Derived*>(this)->run(image, y.data(), 1);
        return y;
    }
};
}  // namespace detail

// The float network, in evaluation mode (fused layers). Holds a reference: the network must
// outlive the runtime.
template <class Net>
class runtime<Net, cpu_target> : public detail::runtime_calls<Net, runtime<Net, cpu_target>> {
    using base = detail::runtime_calls<Net, runtime<Net, cpu_target>>;

public:
    explicit runtime(Net& net, std::size_t threads = 1, std::size_t max_batch = 64)
        : net_(net), pool_(threads), max_batch_(max_batch) {
        net_.reserve(max_batch_);
    }
    using base::operator();
    void run(const float* x, float* y, std::size_t n) {
        constexpr std::size_t C = Net::input_shape.c, plane = Net::input_shape.plane(), K = base::outputs;
        run_context cx;
        cx.pool = pool_.size() > 1 ? &pool_ : nullptr;
        for (std::size_t start = 0; start < n; start += max_batch_) {
            const std::size_t b = std::min(max_batch_, n - start);
            // The network's activations are channel-major: [C][batch][H][W].
            float* in = net_.input_buffer();
            for (std::size_t i = 0; i < b; ++i)
                for (std::size_t c = 0; c < C; ++c)
                    std::copy_n(x + (start + i) * base::inputs + c * plane, plane, in + (c * b + i) * plane);
            const float* out = net_.forward(b, cx);
            constexpr std::size_t oplane = Net::output_shape.plane();
            for (std::size_t i = 0; i < b; ++i)
                for (std::size_t k = 0; k < K / oplane; ++k)
                    std::copy_n(out + (k * b + i) * oplane, oplane, y + (start + i) * K + k * oplane);
        }
    }

private:
    Net& net_;
    thread_pool pool_;
    std::size_t max_batch_;
};

// The DPU's arithmetic on the host: bit for bit what the board computes for the same model.
template <class Net>
class runtime<Net, int8_target> : public detail::runtime_calls<Net, runtime<Net, int8_target>> {
    using base = detail::runtime_calls<Net, runtime<Net, int8_target>>;

public:
    explicit runtime(const quant::qmodel& m) : engine_(checked(m)) {}
    using base::operator();
    void run(const float* x, float* y, std::size_t n) { engine_.run(x, y, n); }
    const target::int8_target& engine() const { return engine_; }

private:
    static const quant::qmodel& checked(const quant::qmodel& m) {
        if (m.c * m.h * m.w != base::inputs || m.outputs() != base::outputs)
            fail("runtime<int8_target>", "the model takes " + std::to_string(m.c * m.h * m.w) + " inputs and gives " +
                                             std::to_string(m.outputs()) + " outputs; the network type has " +
                                             std::to_string(base::inputs) + " and " + std::to_string(base::outputs));
        return m;
    }
    target::int8_target engine_;
};

}  // namespace sgp
