// expect: the window is larger than the feature map it pools
#include <sgp/core/sequential.hpp>
#include <sgp/layers/max_pool.hpp>
using namespace sgp::layers;
using net = sgp::sequential<sgp::input<1, 4, 4>, max_pool<2>, max_pool<2>, max_pool<2>>;
static_assert(net::parameter_count == 0);
