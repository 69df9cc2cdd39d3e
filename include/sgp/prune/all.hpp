#pragma once
// Sparsity-gradient-based layer-wise pruning: channel groups, plans, scores, rules, surgery.
#include "sgp/prune/baselines.hpp"
#include "sgp/prune/cost.hpp"
#include "sgp/prune/groups.hpp"
#include "sgp/prune/plan.hpp"
#include "sgp/prune/prune.hpp"
#include "sgp/prune/rules.hpp"
#include "sgp/prune/schedule.hpp"
#include "sgp/prune/scores.hpp"
