// A runner library for the REAL VART (tests only, built with test_xir where XIR and VART are
// found): VART's Runner::create_runner dlopens the library a subgraph's `runner` attribute
// names and calls its `create_runner`, as it does for the board's DPU runner. This one reads
// the subgraph's graph with sgp's reader and computes it with int8_target, so that test_xir
// runs runtime<Net, dpu_target> through the real VART plug-in path, real xir::Tensor objects
// and real TensorBuffer calls, and compares the scores with int8_target's bit for bit.
#include <memory>
#include <sgp/export/xmodel_import.hpp>
#include <sgp/export/xmodel_reader.hpp>
#include <string>
#include <vart/runner.hpp>
#include <vart/tensor_buffer.hpp>
#include <xir/graph/graph.hpp>
#include <xir/graph/subgraph.hpp>
#include <xir/tensor/tensor.hpp>

#include "int8_runner.hpp"

extern "C" vart::Runner* create_runner(const xir::Subgraph* subgraph) {
    std::string bytes;
    subgraph->get_graph()->serialize_to_string(&bytes);
    auto m = std::make_shared<const sgp::quant::qmodel>(
        sgp::xmodel::to_qmodel(sgp::xmodel::parse(bytes, "the DPU subgraph"), "the DPU subgraph"));
    const int batch = subgraph->has_attr("sgp_test_batch") ? subgraph->get_attr<int>("sgp_test_batch") : 1;
    return new sgp_test::int8_runner<vart::Runner>(std::move(m), batch);
}
