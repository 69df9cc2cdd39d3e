#pragma once
// STAND-IN for VART's Runner (tests only; see tests/vart_standin/README.md): a "DPU" that
// computes with sgp::target::int8_target, on int8 NHWC buffers like the real one (the runner
// itself is tests/int8_runner.hpp, which test_xir also loads into the real VART).
#include <cmath>
#include <cstdint>
#include <memory>
#include <sgp/target/int8_target.hpp>
#include <string>
#include <utility>
#include <vart/tensor_buffer.hpp>
#include <vector>
#include <xir/graph/graph.hpp>

namespace vart {

class Runner {
public:
    virtual ~Runner() = default;
    static std::unique_ptr<Runner> create_runner(const xir::Subgraph* subgraph, const std::string& mode = "");
    virtual std::pair<std::uint32_t, int> execute_async(const std::vector<TensorBuffer*>& input,
                                                        const std::vector<TensorBuffer*>& output) = 0;
    virtual int wait(int jobid, int timeout = -1) = 0;
    virtual std::vector<const xir::Tensor*> get_input_tensors() = 0;
    virtual std::vector<const xir::Tensor*> get_output_tensors() = 0;
};

}  // namespace vart

#include "../../int8_runner.hpp"

namespace vart {

namespace standin {
using int8_runner = sgp_test::int8_runner<Runner>;
}  // namespace standin

inline std::unique_ptr<Runner> Runner::create_runner(const xir::Subgraph* subgraph, const std::string&) {
    if (!subgraph || !subgraph->model_) throw std::runtime_error("stand-in: create_runner needs the DPU subgraph");
    return std::make_unique<standin::int8_runner>(subgraph->model_, sgp_standin::dpu_batch);
}

}  // namespace vart
