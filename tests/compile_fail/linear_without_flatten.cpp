// expect: insert `flatten` before a linear layer
#include <sgp/core/sequential.hpp>
#include <sgp/layers/conv2d.hpp>
#include <sgp/layers/linear.hpp>
using namespace sgp::layers;
using net = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<4>, linear<10>>;
static_assert(net::parameter_count > 0);
