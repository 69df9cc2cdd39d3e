// What keeps long runs safe: atomic writes that clean up after killed writers, and the
// folder lock of experiments.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sgp/io/lock_file.hpp>
#include <sgp/sgp.hpp>

#include "helpers.hpp"

namespace {

// A process id that no process has now: a child that has already exited and been reaped.
long dead_pid() {
    const pid_t p = ::fork();
    if (p == 0) ::_exit(0);
    int status = 0;
    ::waitpid(p, &status, 0);
    return p;
}

std::size_t files_in(const std::filesystem::path& d) {
    return static_cast<std::size_t>(
        std::distance(std::filesystem::directory_iterator(d), std::filesystem::directory_iterator{}));
}

}  // namespace

TEST_CASE("an atomic write removes the temporaries of killed writers of the same file, and only those") {
    sgp_test::temp_dir d("stale-tmp");
    const std::string dead = std::to_string(dead_pid());
    for (const auto* name : {"f.tmp.", "g.tmp."}) sgp::write_file_atomic(d.file(std::string(name) + dead), "old");
    sgp::write_file_atomic(d.file("f.tmp.1"), "pid 1 is alive");  // init: a live writer
    sgp::write_file_atomic(d.file("f.tmp.x"), "not a writer's");
    sgp::write_file_atomic(d.file("f"), "new");
    CHECK_FALSE(std::filesystem::exists(d.file("f.tmp." + dead)));
    CHECK(std::filesystem::exists(d.file("g.tmp." + dead)));  // another target's
    CHECK(std::filesystem::exists(d.file("f.tmp.1")));
    CHECK(std::filesystem::exists(d.file("f.tmp.x")));
    CHECK(files_in(d.path) == 4);
}

TEST_CASE("a folder lock refuses a second holder and is taken over once its holder is gone") {
    sgp_test::temp_dir d("lock");
    {
        const sgp::lock_file first(d.file("lock"));
        CHECK_THROWS_WITH_AS(sgp::lock_file(d.file("lock")),
                             doctest::Contains(("another run (process " + std::to_string(::getpid()) + ")").c_str()),
                             sgp::error);
    }
    CHECK_NOTHROW(sgp::lock_file(d.file("lock")));
    // A holder killed without any clean-up: the kernel drops its lock.
    const pid_t child = ::fork();
    if (child == 0) {
        const sgp::lock_file held(d.file("lock"));
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK_NOTHROW(sgp::lock_file(d.file("lock")));
}
