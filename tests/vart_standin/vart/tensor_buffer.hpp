#pragma once
// STAND-IN for VART's TensorBuffer (tests only; see tests/vart_standin/README.md).
#include <cstdint>
#include <utility>
#include <vector>
#include <xir/tensor/tensor.hpp>

namespace vart {

class TensorBuffer {
protected:
    explicit TensorBuffer(const xir::Tensor* tensor) : tensor_(tensor) {}

public:
    virtual ~TensorBuffer() = default;
    // Address and remaining bytes from element idx (all zeros when empty).
    virtual std::pair<std::uint64_t, std::size_t> data(const std::vector<std::int32_t> idx = {}) = 0;
    const xir::Tensor* get_tensor() const { return tensor_; }

private:
    const xir::Tensor* tensor_;
};

}  // namespace vart
