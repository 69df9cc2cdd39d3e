#pragma once
// runtime<Net, dpu_target>: a compiled .xmodel on the board's DPU through the Vitis AI Runtime.
// The file is checked first with sgp's reader, which refuses what XIR's reader would abort
// the process on (a corrupt or truncated file, ops out of order, attributes of the wrong type,
// shapes XIR's inference disagrees with: export/xir_ops.hpp) with an sgp::error naming the op,
// then loaded with XIR; its one DPU subgraph gets a VART runner.
// Images are scaled to int8 with the input tensor's fix point (DPU_ROUND, saturation, NCHW ->
// NHWC) in batches of the runner's batch size, and the outputs are dequantized with the output
// tensor's fix point (NHWC -> NCHW).
//
// Needs XIR and VART (the board's sysroot) and the xmodel component: link xir::xir,
// vart::runner and sgp::xmodel. Tested with the real XIR and VART (tests/test_xir.cpp: a
// runner library loaded through VART's plug-in mechanism) and, where they are absent, against
// a stand-in of that API (tests/vart_standin) backed by int8_target.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vart/runner.hpp>
#include <vart/tensor_buffer.hpp>
#include <vector>
#include <xir/graph/graph.hpp>
#include <xir/tensor/tensor.hpp>

#include "sgp/core/error.hpp"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/quant/fix_point.hpp"
#include "sgp/target/runtime.hpp"

namespace sgp {

namespace target {

// Host memory for one tensor of the runner, as VART's TensorBuffer.
class host_tensor_buffer : public vart::TensorBuffer {
public:
    host_tensor_buffer(std::unique_ptr<xir::Tensor> t)
        : vart::TensorBuffer(t.get()),
          tensor_(std::move(t)),
          bytes_(static_cast<std::size_t>(tensor_->get_element_num())) {}
    static std::unique_ptr<host_tensor_buffer> make(const std::string& name, const std::vector<std::int32_t>& dims) {
        return std::make_unique<host_tensor_buffer>(
            xir::Tensor::create(name, dims, xir::DataType{xir::DataType::XINT, 8}));
    }
    std::pair<std::uint64_t, std::size_t> data(const std::vector<std::int32_t> idx = {}) override {
        std::size_t offset = 0;
        if (!idx.empty()) {
            const auto dims = tensor_->get_shape();
            for (std::size_t d = 0; d < dims.size(); ++d)
                offset = offset * static_cast<std::size_t>(dims[d]) +
                         (d < idx.size() ? static_cast<std::size_t>(idx[d]) : 0);
        }
        return {reinterpret_cast<std::uint64_t>(bytes_.data() + offset), bytes_.size() - offset};
    }
    std::int8_t* bytes() { return bytes_.data(); }

private:
    std::unique_ptr<xir::Tensor> tensor_;  // the base class points to it
    std::vector<std::int8_t> bytes_;
};

}  // namespace target

template <class Net>
class runtime<Net, dpu_target> : public detail::runtime_calls<Net, runtime<Net, dpu_target>> {
    using base = detail::runtime_calls<Net, runtime<Net, dpu_target>>;

public:
    explicit runtime(const std::string& xmodel) : path_(xmodel) {
        xmodel::read(xmodel);  // a clear error for a missing, corrupt or truncated file
        graph_ = xir::Graph::deserialize(xmodel);
        std::vector<const xir::Subgraph*> dpu;
        for (const auto* s : graph_->get_root_subgraph()->children_topological_sort())
            if (s->has_attr("device") && s->get_attr<std::string>("device") == "DPU") dpu.push_back(s);
        if (dpu.empty())
            fail(path_, "no DPU subgraph: compile the exported model with vai_c_xir for the board's DPU first");
        if (dpu.size() > 1)
            fail(path_, std::to_string(dpu.size()) +
                            " DPU subgraphs: the model must compile into one (ops the DPU "
                            "cannot run split it)");
        runner_ = vart::Runner::create_runner(dpu[0], "run");
        const auto ins = runner_->get_input_tensors();
        const auto outs = runner_->get_output_tensors();
        if (ins.size() != 1 || outs.size() != 1)
            fail(path_, "the DPU subgraph has " + std::to_string(ins.size()) + " inputs and " +
                            std::to_string(outs.size()) + " outputs (one each expected)");
        in_dims_ = ins[0]->get_shape();
        out_dims_ = outs[0]->get_shape();
        if (in_dims_.size() != 4 || in_dims_[0] < 1) fail(path_, "the DPU input tensor is not [batch, H, W, C]");
        batch_ = static_cast<std::size_t>(in_dims_[0]);
        constexpr auto s = Net::input_shape;
        if (static_cast<std::size_t>(in_dims_[1]) != s.h || static_cast<std::size_t>(in_dims_[2]) != s.w ||
            static_cast<std::size_t>(in_dims_[3]) != s.c)
            fail(path_, "the DPU takes " + std::to_string(in_dims_[1]) + "x" + std::to_string(in_dims_[2]) + "x" +
                            std::to_string(in_dims_[3]) + " (HxWxC) images, the network type " + std::to_string(s.h) +
                            "x" + std::to_string(s.w) + "x" + std::to_string(s.c));
        std::size_t per_image = 1;
        for (std::size_t d = 1; d < out_dims_.size(); ++d) per_image *= static_cast<std::size_t>(out_dims_[d]);
        if (out_dims_.empty() || static_cast<std::size_t>(out_dims_[0]) != batch_ || per_image != base::outputs)
            fail(path_, "the DPU gives " + std::to_string(per_image) + " outputs per image, the network type " +
                            std::to_string(base::outputs));
        for (const auto* t : {ins[0], outs[0]})
            if (!t->has_attr("fix_point")) fail(path_, "tensor '" + t->get_name() + "' has no fix_point");
        fp_in_ = ins[0]->template get_attr<int>("fix_point");
        fp_out_ = outs[0]->template get_attr<int>("fix_point");
        in_ = target::host_tensor_buffer::make(ins[0]->get_name(), in_dims_);
        out_ = target::host_tensor_buffer::make(outs[0]->get_name(), out_dims_);
    }

    using base::operator();
    std::size_t batch() const { return batch_; }
    int input_fix_point() const { return fp_in_; }
    int output_fix_point() const { return fp_out_; }

    void run(const float* x, float* y, std::size_t n) {
        constexpr auto s = Net::input_shape;
        const std::size_t oh = out_dims_.size() == 4 ? static_cast<std::size_t>(out_dims_[1]) : 1,
                          ow = out_dims_.size() == 4 ? static_cast<std::size_t>(out_dims_[2]) : 1;
        const std::size_t oc = base::outputs / (oh * ow);
        const float out_scale = std::ldexp(1.f, -fp_out_);
        for (std::size_t start = 0; start < n; start += batch_) {
            const std::size_t b = std::min(batch_, n - start);
            std::int8_t* in = in_->bytes();
            for (std::size_t i = 0; i < batch_; ++i)  // a short last batch runs zeros in the rest
                for (std::size_t p = 0; p < s.h * s.w; ++p)
                    for (std::size_t c = 0; c < s.c; ++c)
                        in[(i * s.h * s.w + p) * s.c + c] =
                            i < b ? quant::quantize(x[(start + i) * base::inputs + c * s.h * s.w + p], fp_in_) : 0;
            const std::vector<vart::TensorBuffer*> ins{in_.get()}, outs{out_.get()};
            const auto job = runner_->execute_async(ins, outs);
            if (job.second != 0)
                fail(path_, "the DPU runner refused the job (status " + std::to_string(job.second) + ")");
            if (const int rc = runner_->wait(static_cast<int>(job.first), -1); rc != 0)
                fail(path_, "the DPU job failed (status " + std::to_string(rc) + ")");
            const std::int8_t* out = out_->bytes();
            for (std::size_t i = 0; i < b; ++i)
                for (std::size_t p = 0; p < oh * ow; ++p)
                    for (std::size_t c = 0; c < oc; ++c)
                        y[(start + i) * base::outputs + c * oh * ow + p] =
                            static_cast<float>(out[(i * oh * ow + p) * oc + c]) * out_scale;
        }
    }

private:
    std::string path_;
    std::unique_ptr<xir::Graph> graph_;
    std::unique_ptr<vart::Runner> runner_;
    std::vector<std::int32_t> in_dims_, out_dims_;
    std::size_t batch_ = 1;
    int fp_in_ = 0, fp_out_ = 0;
    std::unique_ptr<target::host_tensor_buffer> in_, out_;
};

}  // namespace sgp
