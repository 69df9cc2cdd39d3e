#pragma once
// STAND-IN for XIR's tensor (tests only; see tests/vart_standin/README.md).
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace xir {

struct DataType {
    enum Type { INT, UINT, XINT, XUINT, FLOAT, BFLOAT, UNKNOWN };
    DataType(Type t, std::int32_t bits) : type(t), bit_width(bits) {}
    Type type;
    std::int32_t bit_width;
};

class Tensor {
public:
    static std::unique_ptr<Tensor> create(const std::string& name, const std::vector<std::int32_t> shape,
                                          const DataType& type) {
        return std::unique_ptr<Tensor>(new Tensor(name, shape, type));
    }
    const std::string get_name() const { return name_; }
    const std::vector<std::int32_t> get_shape() const { return shape_; }
    std::int64_t get_element_num() const {
        std::int64_t n = 1;
        for (auto d : shape_) n *= d;
        return n;
    }
    const DataType& get_data_type() const { return type_; }
    bool has_attr(const std::string& key) const { return attrs_.count(key) > 0; }
    template <class T>
    const T get_attr(const std::string& key) const {
        static_assert(std::is_same_v<T, int>, "the stand-in's tensors have int attributes only");
        return attrs_.at(key);
    }
    template <class T>
    Tensor* set_attr(const std::string& key, const T& value) {
        attrs_[key] = value;
        return this;
    }

private:
    Tensor(std::string name, std::vector<std::int32_t> shape, DataType type)
        : name_(std::move(name)), shape_(std::move(shape)), type_(type) {}
    std::string name_;
    std::vector<std::int32_t> shape_;
    DataType type_;
    std::map<std::string, int> attrs_;
};

}  // namespace xir
