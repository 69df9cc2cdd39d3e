#pragma once
// Writes a file atomically: the bytes go to a temporary file in the same folder, are
// flushed to disk, and the temporary is renamed over the target; the folder is then flushed
// too, so that the rename itself survives a power cut. A crash leaves either the old file or
// the new one, never half of one. The temporary is "<target>.tmp.<pid>": one left by a
// writer that was killed (its process is gone) is removed by the next write of the target.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "sgp/core/error.hpp"

namespace sgp {

namespace detail {

// Whether process `pid` exists (EPERM: it does, but belongs to someone else).
inline bool process_alive(long pid) {
    return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// Removes "<target>.tmp.<pid>" files whose writer process is gone. A live writer's
// temporary (another process writing the same target right now) is left alone.
inline void remove_stale_temporaries(const std::filesystem::path& target) {
    namespace fs = std::filesystem;
    const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
    const std::string prefix = target.filename().string() + ".tmp.";
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        long pid = 0;
        const char* first = name.data() + prefix.size();
        const char* last = name.data() + name.size();
        const auto [end_of_number, err] = std::from_chars(first, last, pid);
        if (err != std::errc{} || end_of_number != last || pid == ::getpid() || process_alive(pid)) continue;
        std::error_code ignored;
        fs::remove(it->path(), ignored);
    }
}

// fsync of a folder, so that a rename in it is on disk.
inline void sync_folder(const std::filesystem::path& target) {
    const std::string folder = target.has_parent_path() ? target.parent_path().string() : ".";
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // the file itself is complete; only the rename's durability is at stake
    ::fsync(fd);
    ::close(fd);
}

}  // namespace detail

inline void write_file_atomic(const std::string& path, std::string_view bytes) {
    const std::filesystem::path target(path);
    if (target.has_parent_path() && !std::filesystem::exists(target.parent_path()))
        fail(path, "cannot write: folder " + target.parent_path().string() + " does not exist");
    detail::remove_stale_temporaries(target);
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
    detail::sync_folder(target);
}

}  // namespace sgp
