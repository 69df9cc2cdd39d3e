// Links against the installed xmodel component: a one-op model to an XIR graph.
#include <cstdio>
#include <sgp/export/xmodel_writer.hpp>

int main() {
    sgp::quant::qmodel m;
    m.c = m.h = m.w = 1;
    sgp::quant::qconv c;
    c.cin = c.cout = 1;
    c.weight = {0.5f}, c.bias = {0.f}, c.qweight = {64}, c.qbias = {0};
    c.fp_w = 7;
    m.add(c);
    const auto g = sgp::xmodel::to_graph(m, "client");
    std::printf("%s: %d ops\n", g.graph_name().c_str(), g.op_node_size());
    return g.op_node_size() > 0 ? 0 : 1;
}
