#pragma once
// The CPU a figure was measured on, for result files: machines differ (an AMD EPYC or an
// Intel Xeon with AMX), and a time without its machine cannot be compared.
#include <fstream>
#include <string>

namespace sgp {

namespace detail {
// The value of the first "key : value" line of /proc/cpuinfo starting with `key`, or "".
inline std::string cpuinfo_field(const std::string& key) {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key, 0) == 0) {
            const auto colon = line.find(':');
            if (colon == std::string::npos) return "";
            const auto start = line.find_first_not_of(" \t", colon + 1);
            return start == std::string::npos ? "" : line.substr(start);
        }
    return "";
}
}  // namespace detail

// Linux's "model name" of the first processor (x86). An ARM board's /proc/cpuinfo has none:
// there, the device tree's board name and the core's part number ("Xilinx ZynqMP ZCU102 Rev1.0,
// CPU part 0xd03" for its Cortex-A53s). "unknown" where neither exists.
inline std::string cpu_model() {
    if (auto m = detail::cpuinfo_field("model name"); !m.empty()) return m;
    std::string board;
    std::getline(std::ifstream("/sys/firmware/devicetree/base/model"), board, '\0');
    const auto part = detail::cpuinfo_field("CPU part");
    if (board.empty() && part.empty()) return "unknown";
    return board + (board.empty() || part.empty() ? "" : ", ") + (part.empty() ? "" : "CPU part " + part);
}

}  // namespace sgp
