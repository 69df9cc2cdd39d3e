#pragma once
// A small header-only thread pool. parallel_for splits [0, n) into one contiguous range per
// thread; the calling thread runs the first range itself. With one thread (or with
// SGP_NO_THREADS defined, for targets without std::thread) no thread is ever created and
// the work runs inline. Work is always split by index, never by arrival, so results do
// not depend on timing.
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>

#if !defined(SGP_NO_THREADS)
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#endif

namespace sgp {

class thread_pool {
public:
    explicit thread_pool(std::size_t threads = 1) : threads_(std::max<std::size_t>(1, threads)) {
#if defined(SGP_NO_THREADS)
        threads_ = 1;
#else
        for (std::size_t t = 1; t < threads_; ++t) workers_.emplace_back([this, t] { work(t); });
#endif
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() {
#if !defined(SGP_NO_THREADS)
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& w : workers_) w.join();
#endif
    }

    std::size_t size() const {
        return threads_;
    }

    // Runs f(begin, end) over a split of [0, n) into at most size() ranges whose bounds are
    // multiples of `grain` (except the last). Blocks until all ranges are done; rethrows
    // the first exception a range threw.
    template <class F>
    void parallel_for(std::size_t n, std::size_t grain, F&& f) {
        if (n == 0) return;
        grain = std::max<std::size_t>(1, grain);
        const std::size_t units = (n + grain - 1) / grain;
        const std::size_t parts = std::min(threads_, units);
        if (parts <= 1) {
            f(std::size_t{0}, n);
            return;
        }
#if defined(SGP_NO_THREADS)
        f(std::size_t{0}, n);
#else
        auto range = [&](std::size_t p) {
            const std::size_t b = units * p / parts * grain, e = std::min(n, units * (p + 1) / parts * grain);
            if (b < e) f(b, e);
        };
        {
            std::lock_guard lk(m_);
            task_ = [&](std::size_t p) { range(p); };
            parts_ = parts;
            pending_ = parts - 1;
            error_ = nullptr;
            ++generation_;
        }
        cv_.notify_all();
        std::exception_ptr mine;
        try {
            range(0);
        } catch (...) {
            mine = std::current_exception();
        }
        std::unique_lock lk(m_);
        done_cv_.wait(lk, [&] { return pending_ == 0; });
        task_ = nullptr;
        if (mine) std::rethrow_exception(mine);
        if (error_) std::rethrow_exception(error_);
#endif
    }

private:
#if !defined(SGP_NO_THREADS)
    void work(std::size_t id) {
        std::size_t seen = 0;
        for (;;) {
            std::function<void(std::size_t)> task;
            {
                std::unique_lock lk(m_);
                cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
                if (stop_) return;
                seen = generation_;
                if (id >= parts_) continue;
                task = task_;
            }
            std::exception_ptr err;
            try {
                task(id);
            } catch (...) {
                err = std::current_exception();
            }
            {
                std::lock_guard lk(m_);
                if (err && !error_) error_ = err;
                if (--pending_ == 0) done_cv_.notify_one();
            }
        }
    }
    std::vector<std::thread> workers_;
    std::mutex m_;
    std::condition_variable cv_, done_cv_;
    std::function<void(std::size_t)> task_;
    std::size_t parts_ = 0, pending_ = 0, generation_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
#endif
    std::size_t threads_;
};

// parallel_for on an optional pool: a null pool runs inline.
template <class F>
void parallel_for(thread_pool* pool, std::size_t n, std::size_t grain, F&& f) {
    if (pool)
        pool->parallel_for(n, grain, std::forward<F>(f));
    else if (n)
        f(std::size_t{0}, n);
}

}  // namespace sgp
