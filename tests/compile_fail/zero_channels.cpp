// expect: a convolution needs at least one output channel
#include <sgp/core/sequential.hpp>
#include <sgp/layers/conv2d.hpp>
using namespace sgp::layers;
using net = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<0>>;
static_assert(net::parameter_count == 0);
