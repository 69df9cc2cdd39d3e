#pragma once
// A "DPU" runner computed by sgp::target::int8_target on int8 NHWC buffers, as VART's runners
// see them (tests only). `Runner` is the runner interface it implements: the stand-in's
// (tests/vart_standin) or the real vart::Runner, in the VART plug-in test_xir loads through
// VART's own create_runner. Needs <vart/runner.hpp>, <vart/tensor_buffer.hpp> and
// <xir/tensor/tensor.hpp> (real or stand-in) included first.
#include <cmath>
#include <cstdint>
#include <memory>
#include <sgp/quant/qmodel.hpp>
#include <sgp/target/int8_target.hpp>
#include <utility>
#include <variant>
#include <vector>

namespace sgp_test {

template <class Runner>
class int8_runner : public Runner {
public:
    int8_runner(std::shared_ptr<const sgp::quant::qmodel> m, int batch)
        : m_(std::move(m)), engine_(*m_), batch_(batch) {
        in_ = xir::Tensor::create("input_fix", {batch_, i32(m_->h), i32(m_->w), i32(m_->c)}, {xir::DataType::XINT, 8});
        in_->set_attr<int>("fix_point", m_->fp_in);
        const auto d = m_->dims(m_->output_tensor());
        const std::size_t oh = d.h, ow = d.w, oc = d.c;
        oh_ = oh, ow_ = ow, oc_ = oc;
        out_ = xir::Tensor::create("output_fix", {batch_, i32(oh), i32(ow), i32(oc)}, {xir::DataType::XINT, 8});
        out_->set_attr<int>("fix_point", m_->fix_point(m_->output_tensor()));
    }
    std::pair<std::uint32_t, int> execute_async(const std::vector<vart::TensorBuffer*>& input,
                                                const std::vector<vart::TensorBuffer*>& output) override {
        if (input.size() != 1 || output.size() != 1) return {0, 1};
        const auto [in_addr, in_bytes] = input[0]->data({0, 0, 0, 0});
        const auto [out_addr, out_bytes] = output[0]->data({0, 0, 0, 0});
        const std::size_t px = m_->h * m_->w, img = px * m_->c, opx = oh_ * ow_, oimg = opx * oc_;
        if (in_bytes < img * static_cast<std::size_t>(batch_) || out_bytes < oimg * static_cast<std::size_t>(batch_))
            return {0, 2};
        const auto* in = reinterpret_cast<const std::int8_t*>(in_addr);
        auto* out = reinterpret_cast<std::int8_t*>(out_addr);
        std::vector<float> x(img), y(oimg);
        for (int b = 0; b < batch_; ++b) {
            // NHWC int8 -> [C][H][W] real values (exact: the engine quantizes them back).
            for (std::size_t p = 0; p < px; ++p)
                for (std::size_t c = 0; c < m_->c; ++c)
                    x[c * px + p] = std::ldexp(static_cast<float>(in[b * img + p * m_->c + c]), -m_->fp_in);
            engine_.run(x.data(), y.data());
            const auto& q = engine_.last_output();
            for (std::size_t p = 0; p < opx; ++p)
                for (std::size_t c = 0; c < oc_; ++c) out[b * oimg + p * oc_ + c] = q[c * opx + p];
        }
        return {++jobs_, 0};
    }
    int wait(int jobid, int) override { return jobid >= 1 && static_cast<std::uint32_t>(jobid) <= jobs_ ? 0 : 1; }
    std::vector<const xir::Tensor*> get_input_tensors() override { return {in_.get()}; }
    std::vector<const xir::Tensor*> get_output_tensors() override { return {out_.get()}; }

private:
    static std::int32_t i32(std::size_t v) { return static_cast<std::int32_t>(v); }
    std::shared_ptr<const sgp::quant::qmodel> m_;
    sgp::target::int8_target engine_;
    int batch_;
    std::size_t oh_ = 1, ow_ = 1, oc_ = 1;
    std::unique_ptr<xir::Tensor> in_, out_;
    std::uint32_t jobs_ = 0;
};

}  // namespace sgp_test
