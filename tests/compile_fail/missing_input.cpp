// expect: the first entry must be input<C, H, W>
#include <sgp/core/sequential.hpp>
#include <sgp/layers/conv2d.hpp>
using namespace sgp::layers;
using net = sgp::sequential<conv3x3<4>, conv3x3<4>>;
static_assert(net::parameter_count == 0);
