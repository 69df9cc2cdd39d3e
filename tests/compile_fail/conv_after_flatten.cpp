// expect: convolutions need a C x H x W map
#include <sgp/core/sequential.hpp>
#include <sgp/layers/conv2d.hpp>
#include <sgp/layers/flatten.hpp>
using namespace sgp::layers;
using net = sgp::sequential<sgp::input<1, 8, 8>, flatten, conv3x3<4>>;
static_assert(net::parameter_count == 0);
