#pragma once
// STAND-IN for XIR's graph and subgraph (tests only; see tests/vart_standin/README.md).
// deserialize() reads a quantized .xmodel with sgp's reader; the root has two children: the
// input ("USER") and one "DPU" subgraph that carries the model for the stand-in runner.
#include <memory>
#include <sgp/export/xmodel_import.hpp>
#include <sgp/export/xmodel_reader.hpp>
#include <string>
#include <vector>
#include <xir/tensor/tensor.hpp>

namespace sgp_standin {
inline int dpu_batch = 1;  // what the stand-in DPU's runner reports as its batch size
}

namespace xir {

class Subgraph {
public:
    Subgraph(std::string name, std::string device) : name_(std::move(name)), device_(std::move(device)) {}
    const std::string get_name() const { return name_; }
    bool has_attr(const std::string& key) const { return key == "device"; }
    template <class T>
    const T get_attr(const std::string& key) const {
        if (key != "device") throw std::out_of_range("stand-in subgraph: no attribute " + key);
        return device_;
    }
    std::vector<Subgraph*> children_topological_sort() const {
        std::vector<Subgraph*> v;
        for (const auto& c : children_) v.push_back(c.get());
        return v;
    }
    // The stand-in's own data, for its runner.
    std::vector<std::unique_ptr<Subgraph>> children_;
    std::shared_ptr<const sgp::quant::qmodel> model_;

private:
    std::string name_, device_;
};

class Graph {
public:
    static std::unique_ptr<Graph> deserialize(const std::string& path) {
        auto g = std::make_unique<Graph>();
        auto model = std::make_shared<const sgp::quant::qmodel>(sgp::xmodel::to_qmodel(sgp::xmodel::read(path), path));
        g->root_.children_.push_back(std::make_unique<Subgraph>("subgraph_input", "USER"));
        g->root_.children_.push_back(std::make_unique<Subgraph>("subgraph_dpu", "DPU"));
        g->root_.children_.back()->model_ = std::move(model);
        return g;
    }
    Subgraph* get_root_subgraph() { return &root_; }
    const Subgraph* get_root_subgraph() const { return &root_; }

private:
    Subgraph root_{"root", "CPU"};
};

}  // namespace xir
