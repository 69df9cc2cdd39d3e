// sgp-xmodel-info FILE: prints the ops, shapes, attributes and fix points of an .xmodel (one
// written by sgp, Vitis AI's quantizer or its compiler). A file that is not a usable XIR graph
// is reported with the reason and exit status 1.
#include <cstdio>
#include <iostream>
#include <sgp/export/xmodel_reader.hpp>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2 || std::string(argv[1]) == "--help") {
        std::fprintf(argc == 2 ? stdout : stderr, "usage: sgp-xmodel-info FILE.xmodel\n");
        return argc == 2 ? 0 : 2;
    }
    try {
        sgp::xmodel::describe(sgp::xmodel::read(argv[1]), std::cout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sgp-xmodel-info: %s\n", e.what());
        return 1;
    }
}
