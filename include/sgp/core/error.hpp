#pragma once
// One exception type for everything a user can get wrong at run time (files, shapes,
// options, diverging training). The message always names the file or object and the
// problem, so a caller can print e.what() and stop.
#include <stdexcept>
#include <string>

namespace sgp {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws sgp::error("<where>: <what>").
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
    throw error(where + ": " + what);
}

}  // namespace sgp
