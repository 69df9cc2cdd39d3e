// expect: a layer does not meet sgp's layer contract
#include <sgp/core/sequential.hpp>
#include <sgp/layers/relu.hpp>
// A user's layer that runs but states no channel role, cost or int8 form.
struct my_scale {
    template <sgp::shape In>
    struct bind : sgp::stateless_layer {
        static constexpr std::string_view kind = "my_scale";
        static constexpr sgp::shape in_shape = In, out_shape = In;
        void set_input_channels(std::size_t) {}
        std::size_t input_channels() const { return In.c; }
        std::size_t out_channels() const { return In.c; }
        void forward(sgp::run_context&, const float*, float*, std::size_t) {}
        void backward(sgp::run_context&, const float*, const float*, const float*, float*, std::size_t) {}
    };
};
using net = sgp::sequential<sgp::input<1, 4, 4>, my_scale, sgp::layers::relu>;
static_assert(net::parameter_count == 0);
