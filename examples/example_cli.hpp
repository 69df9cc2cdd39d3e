#pragma once
// What the example programs share: command-line flags, the choice of network by name, and
// Fashion-MNIST loaders.
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <sgp/sgp.hpp>
#include <string>

namespace example {

// Flags with one value each, bound to variables; --help prints `usage` and exits.
class flags {
public:
    explicit flags(const char* usage) : usage_(usage) {}

    void size(const std::string& name, std::size_t& v) {
        set_[name] = [&v](const std::string& k, const std::string& s) { v = static_cast<std::size_t>(number(k, s)); };
    }
    void u64(const std::string& name, std::uint64_t& v) {
        set_[name] = [&v](const std::string& k, const std::string& s) { v = static_cast<std::uint64_t>(number(k, s)); };
    }
    void real(const std::string& name, float& v) {
        set_[name] = [&v](const std::string& k, const std::string& s) { v = static_cast<float>(number(k, s)); };
    }
    void text(const std::string& name, std::string& v) {
        set_[name] = [&v](const std::string&, const std::string& s) { v = s; };
    }
    void toggle(const std::string& name, bool& v) { toggles_[name] = &v; }

    void parse(int argc, char** argv) const {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            if (a == "--help" || a == "-h") {
                std::cout << usage_;
                std::exit(0);
            }
            if (const auto t = toggles_.find(a); t != toggles_.end()) {
                *t->second = true;
                continue;
            }
            const auto it = set_.find(a);
            if (it == set_.end()) throw sgp::error("unknown option '" + a + "' (see --help)");
            if (i + 1 >= argc) throw sgp::error(a + ": missing value (see --help)");
            it->second(a, argv[++i]);
        }
    }

private:
    static double number(const std::string& flag, const std::string& v) {
        try {
            std::size_t used = 0;
            const double d = std::stod(v, &used);
            if (used == v.size() && d >= 0) return d;
        } catch (const std::exception&) {
        }
        throw sgp::error(flag + ": '" + v + "' is not a non-negative number");
    }
    const char* usage_;
    std::map<std::string, std::function<void(const std::string&, const std::string&)>> set_;
    std::map<std::string, bool*> toggles_;
};

// Calls f.template operator()<Net>() for the network named `model`.
template <class F>
int with_model(const std::string& model, F&& f) {
    if (model == "demo") return f.template operator()<sgp::models::vgg13bn_quarter<>>();
    if (model == "vgg13bn") return f.template operator()<sgp::models::vgg13bn<>>();
    if (model == "vgg13bn-source") return f.template operator()<sgp::models::vgg13bn_source<>>();
    throw sgp::error("--model: unknown model '" + model + "' (demo, vgg13bn, vgg13bn-source)");
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

// An unshuffled, unaugmented copy of loader options, for evaluation.
inline sgp::loader_options for_evaluation(sgp::loader_options o) {
    o.shuffle = false;
    o.crop_padding = 0;
    o.flip = false;
    o.batch = 256;
    return o;
}

// Runs main's body, turning any exception into "error: ..." and exit code 1.
template <class F>
int guarded(F&& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace example
