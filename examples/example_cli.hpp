#pragma once
// What the example programs share: command-line flags (CLI11, with a range check on every
// number and a writability check on every output path, both before any work starts), the
// settings a resumed run must keep, the choice of network by name, and Fashion-MNIST loaders.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <new>
#include <set>
#include <sgp/models/mobilenet.hpp>
#include <sgp/models/resnet.hpp>
#include <sgp/sgp.hpp>
#include <string>
#include <thread>
#include <vector>

namespace example {

// The folder of `path` exists and is writable, and `path` is not a folder: "" or a reason.
inline std::string writable_output(const std::string& path) {
    namespace fs = std::filesystem;
    const fs::path p(path);
    const fs::path folder = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::error_code ec;
    if (fs::is_directory(p, ec)) return "'" + path + "' is a folder, not a file";
    if (!fs::is_directory(folder, ec))
        return "cannot write '" + path + "': folder " + folder.string() + " does not exist";
    if (::access(folder.c_str(), W_OK) != 0)
        return "cannot write '" + path + "': folder " + folder.string() + " is not writable";
    return {};
}

// The cores this machine has (at least 1), and the most threads a flag accepts: more than a
// few per core only adds switching (1000 threads ran 7x slower than 2 on 2 cores).
inline std::size_t cores() {
    return std::max(1u, std::thread::hardware_concurrency());
}
inline std::size_t max_threads() {
    return 4 * cores();
}

// Flags with one value each, bound to variables with a range; --help prints every flag
// with its default and range.
class flags {
public:
    explicit flags(std::string description) : app_(std::move(description)) {
        app_.option_defaults()->always_capture_default();
        app_.get_formatter()->column_width(34);
    }

    // A whole number in [lo, hi]; `why` explains the bounds where they are not obvious.
    CLI::Option* size(const std::string& name, std::size_t& v, const std::string& help, std::size_t lo, std::size_t hi,
                      const std::string& why = "") {
        return bind(name, v, help)->check(whole(lo, hi, why));
    }
    CLI::Option* u64(const std::string& name, std::uint64_t& v, const std::string& help, std::uint64_t lo,
                     std::uint64_t hi) {
        return bind(name, v, help)->check(whole(lo, hi, ""));
    }
    // A finite real number in [lo, hi].
    CLI::Option* real(const std::string& name, float& v, const std::string& help, double lo, double hi) {
        return bind(name, v, help)->check(real_in(lo, hi));
    }
    CLI::Option* real(const std::string& name, double& v, const std::string& help, double lo, double hi) {
        return bind(name, v, help)->check(real_in(lo, hi));
    }
    CLI::Option* text(const std::string& name, std::string& v, const std::string& help) { return bind(name, v, help); }
    // One of `names`.
    CLI::Option* choice(const std::string& name, std::string& v, const std::string& help,
                        const std::vector<std::string>& names) {
        return bind(name, v, help)->check(CLI::IsMember(names));
    }
    // A file the program writes: its folder must exist and be writable when the flags are read.
    CLI::Option* output(const std::string& name, std::string& v, const std::string& help) {
        return bind(name, v, help)->check(CLI::Validator(writable_output, "FILE"));
    }
    CLI::Option* toggle(const std::string& name, bool& v, const std::string& help) {
        values_[name] = [&v] { return std::string(v ? "true" : "false"); };
        return app_.add_flag(name, v, help);
    }
    // --threads N: 1 to max_threads().
    CLI::Option* threads(std::size_t& v, const std::string& help = "threads") {
        return size(
            "--threads", v, help, 1, max_threads(),
            "at least 1, and more than 4 per core (" + std::to_string(cores()) + " here) only slows the work down");
    }

    void parse(int argc, char** argv) {
        try {
            app_.parse(argc, argv);
        } catch (const CLI::CallForHelp&) {
            std::cout << app_.help();
            std::exit(0);
        } catch (const CLI::ParseError& e) {
            throw sgp::error(std::string(e.what()) + " (see --help)");
        }
    }

    bool given(const std::string& name) const { return app_.count(name) > 0; }

    // The flags that shape a run's result, as name -> value, all but `may_change`: recorded
    // when a run starts and compared when it resumes.
    std::map<std::string, std::string> settings(const std::set<std::string>& may_change) const {
        std::map<std::string, std::string> s;
        for (const auto& [name, value] : values_)
            if (!may_change.count(name)) s[name] = value();
        return s;
    }

private:
    template <class T>
    CLI::Option* bind(const std::string& name, T& v, const std::string& help) {
        values_[name] = [&v] {
            if constexpr (std::is_same_v<T, std::string>) {
                return v;
            } else if constexpr (std::is_floating_point_v<T>) {
                char b[32];
                std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));
                return std::string(b);
            } else {
                return std::to_string(v);
            }
        };
        return app_.add_option(name, v, help);
    }
    static CLI::Validator whole(std::uint64_t lo, std::uint64_t hi, const std::string& why) {
        const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
        return CLI::Validator(
            [=](const std::string& s) -> std::string {
                std::uint64_t v = 0;
                const auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
                if (err == std::errc{} && end == s.data() + s.size() && v >= lo && v <= hi) return {};
                return "'" + s + "' is not a whole number from " + range + (why.empty() ? "" : ": " + why);
            },
            range);
    }
    static CLI::Validator real_in(double lo, double hi) {
        char b[64];
        std::snprintf(b, sizeof b, "%g to %g", lo, hi);
        const std::string range = b;
        return CLI::Validator(
            [=](const std::string& s) -> std::string {
                char* end = nullptr;
                const double v = std::strtod(s.c_str(), &end);
                if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(v) && v >= lo && v <= hi) return {};
                return "'" + s + "' is not a number from " + range;
            },
            range);
    }

    CLI::App app_;
    std::map<std::string, std::function<std::string()>> values_;
};

// Refuses to resume a run whose recorded settings differ from this invocation's, naming
// every difference: mixing them would give a result that neither set of flags describes.
inline void require_same_settings(const std::map<std::string, std::string>& recorded,
                                  const std::map<std::string, std::string>& now, const std::string& where) {
    std::string diff;
    for (const auto& [name, value] : now) {
        const auto it = recorded.find(name);
        if (it == recorded.end() || it->second == value) continue;
        diff += (diff.empty() ? "" : ", ") + name + " " + it->second + " (now " + value + ")";
    }
    if (!diff.empty())
        sgp::fail(where, "this run was started with " + diff +
                             "; resume it with the same settings or start afresh in another place");
}

// Settings as a JSON object, and back.
inline std::string settings_json(const std::map<std::string, std::string>& s) {
    sgp::json_writer j;
    j.begin_object();
    for (const auto& [k, v] : s) j.field(k, v);
    j.end_object();
    return j.str();
}
inline std::map<std::string, std::string> settings_of(const sgp::json_value& v, const std::string& where) {
    std::map<std::string, std::string> s;
    if (v.kind != sgp::json_value::type::object) sgp::fail(where, "the recorded settings are not an object");
    for (const auto& [k, x] : v.fields) {
        if (x.kind != sgp::json_value::type::string) sgp::fail(where, "the recorded setting " + k + " is not text");
        s[k] = x.str;
    }
    return s;
}

// The models the programs accept. A build configured with SGP_EXAMPLE_MODELS=tested (the
// sanitizer build) compiles only the two the tests run.
#ifdef SGP_EXAMPLE_MODELS_TESTED
inline const std::vector<std::string> model_names = {"demo", "vgg13bn-source"};
inline const std::vector<std::string> any_model_names = model_names;
inline const std::vector<std::string> int8_model_names = model_names;
#else
inline const std::vector<std::string> model_names = {"demo", "vgg13bn", "vgg13bn-source"};
inline const std::vector<std::string> any_model_names = {"demo",     "vgg13bn",      "vgg13bn-source",
                                                         "resnet20", "resnet56",     "resnet56-b",
                                                         "resnet18", "mobilenet-v1", "mobilenet-v2"};
// The int8 programs (quantize): the VGGs, and one residual and one depthwise network (every
// model folds; the list is kept short for the programs' compile time).
inline const std::vector<std::string> int8_model_names = {"demo", "vgg13bn", "vgg13bn-source", "resnet20",
                                                          "mobilenet-v2"};
#endif

// Calls f.template operator()<Net>() for the network named `model`.
template <class F>
int with_model(const std::string& model, F&& f) {
    if (model == "demo") return f.template operator()<sgp::models::vgg13bn_quarter<>>();
#ifndef SGP_EXAMPLE_MODELS_TESTED
    if (model == "vgg13bn") return f.template operator()<sgp::models::vgg13bn<>>();
#endif
    if (model == "vgg13bn-source") return f.template operator()<sgp::models::vgg13bn_source<>>();
    std::string known;
    for (const auto& n : model_names) known += (known.empty() ? "" : ", ") + n;
    throw sgp::error("--model: unknown model '" + model + "' (" + known + ")");
}

// Every declared model, for the programs that train and prune. 1x32x32 Fashion-MNIST input, 10
// classes.
template <class F>
int with_any_model(const std::string& model, F&& f) {
#ifndef SGP_EXAMPLE_MODELS_TESTED
    using in = sgp::input<1, 32, 32>;
    if (model == "resnet20") return f.template operator()<sgp::models::resnet20<in>>();
    if (model == "resnet56") return f.template operator()<sgp::models::resnet56<in>>();
    // Projection shortcuts (option B): the residual streams become coupled channel groups.
    if (model == "resnet56-b") return f.template operator()<sgp::models::resnet<in, 10, 'B', 16, 9, 9, 9>>();
    if (model == "resnet18") return f.template operator()<sgp::models::resnet18<in>>();
    if (model == "mobilenet-v1") return f.template operator()<sgp::models::mobilenet_v1<in>>();
    if (model == "mobilenet-v2") return f.template operator()<sgp::models::mobilenet_v2<in>>();
#endif
    return with_model(model, f);
}

template <class F>
int with_int8_model(const std::string& model, F&& f) {
#ifndef SGP_EXAMPLE_MODELS_TESTED
    using in = sgp::input<1, 32, 32>;
    if (model == "resnet20") return f.template operator()<sgp::models::resnet20<in>>();
    if (model == "mobilenet-v2") return f.template operator()<sgp::models::mobilenet_v2<in>>();
#endif
    return with_model(model, f);
}

// Fashion-MNIST's normalisation, zero-padded to the network's input size.
inline sgp::loader_options fashion_mnist_options(std::size_t batch, std::uint64_t seed, std::size_t net_size) {
    sgp::loader_options lo;
    lo.batch = batch;
    lo.seed = seed;
    lo.input = {1, net_size, net_size};  // padding derived from the images; refused if they do not fit
    lo.mean = {0.2860f};
    lo.std = {0.3530f};
    return lo;
}

// An unshuffled, unaugmented copy of loader options, for evaluation, in batches of 256.
inline sgp::loader_options for_evaluation(sgp::loader_options o) {
    o = sgp::evaluation_options(std::move(o));
    o.batch = 256;
    return o;
}

// Runs main's body, turning any exception into "error: ..." and exit code 1.
template <class F>
int guarded(F&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        std::cerr << "error: out of memory (a smaller --batch, or a smaller --model, needs less)\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace example
