// .xmodel files: parsed and validated (xmodel_reader), imported into a qmodel (xmodel_import)
// and run through the int8 path (int8_target) on one image.
#include <vector>

#include "fuzz.hpp"
#include "sgp/export/xmodel_import.hpp"
#include "sgp/export/xmodel_reader.hpp"
#include "sgp/target/int8_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sgp_fuzz::refuse_or_pass([&] {
        const auto g = sgp::xmodel::parse(std::string(sgp_fuzz::bytes(data, size)), "fuzz.xmodel");
        const auto m = sgp::xmodel::to_qmodel(g, "fuzz.xmodel");
        sgp::target::int8_target t(m);
        std::vector<float> x(m.c * m.h * m.w, 0.25f), y(m.outputs());
        t.run(x.data(), y.data());
    });
}
