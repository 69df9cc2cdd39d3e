// Pruning plans: parsed from JSON, validated against a declared network and applied to it,
// which then runs forward at its pruned widths.
#include <algorithm>

#include "fuzz.hpp"
#include "fuzz_net.hpp"
#include "sgp/prune/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sgp_fuzz::refuse_or_pass([&] {
        const auto p = sgp::prune::plan_from_json(std::string(sgp_fuzz::bytes(data, size)), "fuzz plan");
        sgp_fuzz::net_t net;
        sgp::prune::apply(net, p, "fuzz plan");
        net.reserve(2);
        std::fill_n(net.input_buffer(), 2 * sgp_fuzz::net_t::input_shape.size(), 0.5f);
        sgp::run_context cx;
        net.forward(2, cx);
    });
}
