#pragma once
// Learning-rate schedules as functions of the (fractional) epoch, so the rate can change
// every step: constant, step decay, cosine annealing, and cosine annealing with warm
// restarts (SGDR), with PyTorch's formulas.
#include <cmath>
#include <numbers>
#include <variant>

namespace sgp::schedules {

struct constant {
    float operator()(double, float base) const { return base; }
};

// base * gamma^floor(epoch / step_size)
struct step {
    int step_size = 30;
    float gamma = 0.1f;
    float operator()(double epoch, float base) const { return base * std::pow(gamma, std::floor(epoch / step_size)); }
};

// eta_min + (base - eta_min) * (1 + cos(pi * epoch / t_max)) / 2
struct cosine {
    double t_max = 100;
    float eta_min = 0.f;
    float operator()(double epoch, float base) const {
        return eta_min + (base - eta_min) * static_cast<float>(0.5 * (1 + std::cos(std::numbers::pi * epoch / t_max)));
    }
};

// Cosine annealing restarted after t0 epochs, periods growing by t_mult.
struct cosine_restarts {
    double t0 = 50;
    int t_mult = 1;
    float eta_min = 0.f;
    float operator()(double epoch, float base) const {
        double t_i = t0, t_cur = epoch;
        if (t_mult == 1)
            t_cur = std::fmod(epoch, t0);
        else
            while (t_cur >= t_i) {
                t_cur -= t_i;
                t_i *= t_mult;
            }
        return eta_min + (base - eta_min) * static_cast<float>(0.5 * (1 + std::cos(std::numbers::pi * t_cur / t_i)));
    }
};

}  // namespace sgp::schedules

namespace sgp {
using lr_schedule = std::variant<schedules::constant, schedules::step, schedules::cosine, schedules::cosine_restarts>;

inline float learning_rate(const lr_schedule& s, double epoch, float base) {
    return std::visit([&](const auto& f) { return f(epoch, base); }, s);
}
}  // namespace sgp
