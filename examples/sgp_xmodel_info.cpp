// sgp-xmodel-info FILE: prints the ops, shapes, attributes and fix points of an .xmodel (one
// written by sgp, Vitis AI's quantizer or its compiler). A file that is not a usable XIR graph
// is reported with the reason and exit status 1.
// sgp-xmodel-info --check [--dpu SIZE] FILE: reads a quantized graph as its int8 model and
// says, op by op, whether a DPUCZDX8G of that size (default B4096) runs it or why it falls back
// to the CPU, before vai_c_xir is run.
#include <cstdio>
#include <iostream>
#include <sgp/analysis/dpu_placement.hpp>
#include <sgp/export/xmodel_import.hpp>
#include <sgp/export/xmodel_reader.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    bool check = false;
    std::string dpu = "B4096", path;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--help") {
            std::printf("usage: sgp-xmodel-info [--check [--dpu B512..B4096]] FILE.xmodel\n");
            return 0;
        }
        if (args[i] == "--check") {
            check = true;
        } else if (args[i] == "--dpu" && i + 1 < args.size()) {
            dpu = args[++i];
        } else if (path.empty() && args[i].rfind("--", 0) != 0) {
            path = args[i];
        } else {
            std::fprintf(stderr, "sgp-xmodel-info: unexpected argument '%s'\n", args[i].c_str());
            return 2;
        }
    }
    if (path.empty()) {
        std::fprintf(stderr, "usage: sgp-xmodel-info [--check [--dpu B512..B4096]] FILE.xmodel\n");
        return 2;
    }
    try {
        const auto g = sgp::xmodel::read(path);
        if (!check) {
            sgp::xmodel::describe(g, std::cout);
            return 0;
        }
        const auto size = sgp::analysis::dpu_size(dpu);
        const auto p = sgp::analysis::place(sgp::xmodel::to_qmodel(g, path), size);
        sgp::analysis::print_placement(p, std::cout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sgp-xmodel-info: %s\n", e.what());
        return 1;
    }
}
