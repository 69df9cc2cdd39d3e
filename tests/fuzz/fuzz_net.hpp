#pragma once
// The network the state_dict and plan targets (and their seeds) load into. g++ only: clang-14
// cannot compile batch_norm's float template parameters.
#include "sgp/core/sequential.hpp"
#include "sgp/layers/batch_norm.hpp"
#include "sgp/layers/conv2d.hpp"
#include "sgp/layers/flatten.hpp"
#include "sgp/layers/global_avg_pool.hpp"
#include "sgp/layers/linear.hpp"
#include "sgp/layers/max_pool.hpp"
#include "sgp/layers/relu.hpp"

namespace sgp_fuzz {

// Two channel groups to prune, batch norm buffers and a counter, a linear head.
using namespace sgp::layers;
using net_t = sgp::sequential<sgp::input<1, 8, 8>, conv3x3<4>, batch_norm, relu, max_pool<2>, conv3x3<6>, batch_norm,
                              relu, global_avg_pool, flatten, linear<3>>;

}  // namespace sgp_fuzz
