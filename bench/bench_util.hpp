#pragma once
// What the benchmarks share: flags (those of the examples), and timing as the median of
// repeats, each repeat as many calls as take `min_seconds`, so that the clock's resolution
// and one-off stalls of a shared machine matter little.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

#include "example_cli.hpp"

namespace bench {

struct timing {
    std::vector<double> seconds;  // per call, one entry per repeat, ascending
    std::size_t calls_per_repeat = 1;
    double median() const { return seconds[seconds.size() / 2]; }
    double min() const { return seconds.front(); }
    double max() const { return seconds.back(); }
};

template <class F>
timing time_calls(std::size_t repeats, double min_seconds, F&& f) {
    using clock = std::chrono::steady_clock;
    f();  // warm-up: first touch of every buffer, packed weights
    timing t;
    for (;;) {
        const auto t0 = clock::now();
        for (std::size_t k = 0; k < t.calls_per_repeat; ++k) f();
        if (std::chrono::duration<double>(clock::now() - t0).count() > min_seconds || t.calls_per_repeat > 4096) break;
        t.calls_per_repeat *= 2;
    }
    for (std::size_t r = 0; r < std::max<std::size_t>(1, repeats); ++r) {
        const auto t0 = clock::now();
        for (std::size_t k = 0; k < t.calls_per_repeat; ++k) f();
        t.seconds.push_back(std::chrono::duration<double>(clock::now() - t0).count() /
                            static_cast<double>(t.calls_per_repeat));
    }
    std::sort(t.seconds.begin(), t.seconds.end());
    return t;
}

}  // namespace bench
