// Built by the "static header" CTest case against a header that sgp::emit_header wrote: the
// pruned network as a static type with its weights in constant arrays, and its int8 model.
// No file is read: the images and the outputs of the source network are compiled in too
// (check_data.hpp). Exit status 0 when every output equals the source network's.
#include <cstdio>
#include <sgp/target/runtime.hpp>

#include "check_data.hpp"
#include "model.hpp"

int main() {
    using net_t = sgp_model::network;
    constexpr std::size_t n = sgp_model_check::images, K = net_t::output_shape.size();
    static_assert(sizeof(sgp_model_check::float_scores) / sizeof(float) == n * K, "check data of another network");
    net_t net;
    sgp_model::load(net);
    float fl[n * K], q[n * K];
    sgp::runtime<net_t, sgp::cpu_target>(net, 1, n).run(sgp_model_check::input, fl, n);
    sgp::runtime<net_t, sgp::int8_target>(sgp_model::qmodel()).run(sgp_model_check::input, q, n);
    std::size_t float_diff = 0, int8_diff = 0;
    for (std::size_t i = 0; i < n * K; ++i) {
        float_diff += fl[i] != sgp_model_check::float_scores[i];
        int8_diff += q[i] != sgp_model_check::int8_scores[i];
    }
    std::printf("static header: %zu images, %zu parameters; float outputs differing: %zu of %zu, int8: %zu of %zu\n", n,
                net_t::parameter_count, float_diff, n * K, int8_diff, n * K);
    return float_diff == 0 && int8_diff == 0 ? 0 : 1;
}
