#pragma once
// Batch-norm recalibration: re-estimates every batch norm's running mean and variance from
// data, without touching a weight. After pruning surgery the running statistics are those of
// the wider network (the layers before a batch norm lost inputs), so the evaluation-mode
// network is far off until fine-tuning has run for a while; recalibrated, its accuracy after
// surgery is a meaningful figure. Forward passes in training mode with
// run_context::statistics_only: batch norms use and average the batch statistics (a
// cumulative average over the batches, as PyTorch's momentum=None), dropout stays the
// identity, and nothing is back-propagated.
#include <cstddef>
#include <type_traits>
#include <vector>

#include "sgp/core/parallel.hpp"
#include "sgp/data/loader.hpp"
#include "sgp/layers/contract.hpp"

namespace sgp {

// Recalibrates on the first `batches` batches of `data` (0: all of it). Returns the number used.
template <class Net>
std::size_t recalibrate_batch_norm(Net& net, batch_loader& data, std::size_t batches, thread_pool* pool = nullptr) {
    data.check_network(Net::input_shape, Net::output_shape.size(), "the network being recalibrated");
    net.for_each_node([](std::size_t, auto& l) {
        if constexpr (requires { l.reset_running_statistics(); }) l.reset_running_statistics();
    });
    net.reserve(data.options().batch);
    std::vector<int> labels(data.options().batch);
    run_context cx;
    cx.pool = pool;
    cx.training = true;
    cx.statistics_only = true;
    data.start_epoch(0);
    std::size_t b = 0;
    for (std::size_t n; (batches == 0 || b < batches) && (n = data.next(net.input_buffer(), labels.data())) > 0; ++b)
        net.forward(n, cx);
    return b;
}

}  // namespace sgp
