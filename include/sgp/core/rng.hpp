#pragma once
// Deterministic random numbers: the same seed gives the same stream on every platform and
// standard library (std::shuffle and std::*_distribution do not promise that), which is
// what makes a resumed training run identical to an uninterrupted one.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

namespace sgp {

// SplitMix64 finaliser: a good 64-bit mix, also used to derive independent sub-seeds.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
constexpr std::uint64_t mix64(std::uint64_t a, std::uint64_t b) {
    return mix64(a ^ mix64(b));
}

// xoshiro256** seeded through SplitMix64.
class rng {
public:
    explicit rng(std::uint64_t seed = 0) {
        for (auto& s : s_) s = seed = mix64(seed);
    }
    std::uint64_t next() {
        const std::uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return r;
    }
    // Uniform in [0, 1) with 24 random bits.
    float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n), unbiased: draws below the largest multiple of n are kept.
    std::uint64_t below(std::uint64_t n) {
        const std::uint64_t reject_below = (0 - n) % n;  // 2^64 mod n
        for (;;) {
            const std::uint64_t r = next();
            if (r >= reject_below) return r % n;
        }
    }
    // Standard normal (Box-Muller).
    float normal() {
        const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;
        const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
    }
    template <class T>
    void shuffle(std::vector<T>& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4];
};

}  // namespace sgp
