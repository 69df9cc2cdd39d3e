// expect: residual: the body's output shape differs from its shortcut's
#include <sgp/core/sequential.hpp>
#include <sgp/layers/batch_norm.hpp>
#include <sgp/layers/conv2d.hpp>
#include <sgp/layers/residual.hpp>
using namespace sgp::layers;
// The body doubles the channels and halves the map; the identity shortcut cannot follow.
using net = sgp::sequential<sgp::input<8, 8, 8>, residual<conv2d<16, 3, 2, 1>, batch_norm>>;
static_assert(net::parameter_count > 0);
