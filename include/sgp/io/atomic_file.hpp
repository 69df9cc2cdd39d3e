#pragma once
// Writes a file atomically: the bytes go to a temporary file in the same folder, are
// flushed to disk, and the temporary is renamed over the target. A crash leaves either
// the old file or the new one, never half of one.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "sgp/core/error.hpp"

namespace sgp {

inline void write_file_atomic(const std::string& path, std::string_view bytes) {
    const std::filesystem::path target(path);
    if (target.has_parent_path() && !std::filesystem::exists(target.parent_path()))
        fail(path, "cannot write: folder " + target.parent_path().string() + " does not exist");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(path, std::string("cannot write: ") + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const std::string why = std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            fail(path, "write failed: " + why);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        fail(path, "write failed: " + why);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        fail(path, "cannot replace the file: " + why);
    }
}

}  // namespace sgp
