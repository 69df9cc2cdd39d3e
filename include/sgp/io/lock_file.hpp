#pragma once
// An exclusive lock on a file (flock), held while the object lives: one run at a time in a
// folder. The kernel drops the lock when its process ends, however it ends, so a lock left
// by a killed run is simply taken over; the holder's pid is written into the file for the
// message of the run that is refused.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sgp/core/error.hpp"

namespace sgp {

class lock_file {
public:
    explicit lock_file(std::string path) : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) fail(path_, std::string("cannot open the lock file: ") + std::strerror(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int why = errno;
            char buf[32] = {};
            const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
            ::close(fd_);
            if (why != EWOULDBLOCK) fail(path_, std::string("cannot lock: ") + std::strerror(why));
            std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
            while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
            fail(path_, "another run (process " + holder + ") is using this folder; wait for it or use another one");
        }
        const std::string pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
            // The lock holds all the same; only the pid in a refused run's message is missing.
        }
    }
    lock_file(const lock_file&) = delete;
    lock_file& operator=(const lock_file&) = delete;
    ~lock_file() { ::close(fd_); }  // releases the lock; the file stays (removing it would race)

    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace sgp
