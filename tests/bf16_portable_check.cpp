// Built by CTest for a generic x86-64 (-march=x86-64: no AVX at compile time) and run
// here: every bf16 kernel this CPU has must be found at run time and give the right products,
// and none it lacks may be executed. A -march=native build cannot show this (its compiler
// inlines what a portable build calls through the run-time choice).
#include <cmath>
#include <cstdio>
#include <sgp/core/rng.hpp>
#include <sgp/kernels/gemm_bf16.hpp>
#include <vector>

int main() {
    namespace k = sgp::kernels;
    int failures = 0, ran = 0;
    for (auto kern : {k::bf16_kernel::portable, k::bf16_kernel::avx512, k::bf16_kernel::amx}) {
        if (!k::available(kern)) {
            std::printf("%s: skipped (this CPU cannot run it)\n", std::string(k::name_of(kern)).c_str());
            continue;
        }
        k::set_bf16_kernel(kern);
        ++ran;
        for (auto [M, N, K] : {std::array<std::size_t, 3>{64, 100, 600}, {33, 31, 17}, {32, 32, 32}}) {
            std::vector<float> A(M * K), B(K * N), C(M * N, 1.f);
            sgp::rng r(3);
            for (auto& v : A) v = r.normal();
            for (auto& v : B) v = r.normal();
            k::gemm_bf16(false, false, M, N, K, A.data(), K, B.data(), N, C.data(), N, true);
            double worst = 0;
            for (std::size_t i = 0; i < M; ++i)
                for (std::size_t j = 0; j < N; ++j) {
                    double e = 1, mag = 1;
                    for (std::size_t q = 0; q < K; ++q) {
                        const double p = double(k::bf16::round(A[i * K + q])) * k::bf16::round(B[q * N + j]);
                        e += p, mag += std::abs(p);
                    }
                    worst = std::max(worst, std::abs(C[i * N + j] - e) / ((K + 2) * 0x1p-24 * mag));
                }
            if (!(worst <= 1)) {
                std::printf("%s %zux%zux%zu: error %.3g of the fp32-sum bound\n", std::string(k::name_of(kern)).c_str(),
                            M, N, K, worst);
                ++failures;
            }
        }
        std::printf("%s: ran\n", std::string(k::name_of(kern)).c_str());
    }
    return failures == 0 && ran > 0 ? 0 : 1;
}
