// A state_dict (.npz) loaded into a declared network, which then runs forward.
#include <algorithm>

#include "fuzz.hpp"
#include "fuzz_net.hpp"
#include "sgp/io/state_dict.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sgp_fuzz::refuse_or_pass([&] {
        sgp_fuzz::net_t net;
        sgp::read_state_dict(net, sgp::npz_decode(sgp_fuzz::bytes(data, size), "fuzz.npz"), "fuzz.npz");
        net.reserve(2);
        std::fill_n(net.input_buffer(), 2 * sgp_fuzz::net_t::input_shape.size(), 0.5f);
        sgp::run_context cx;
        net.forward(2, cx);
    });
}
