#pragma once
// Single-precision GEMM: C = op(A) * op(B) (+ C when accumulating), row-major, with
// op(X) = X or X^T. Blocked for the caches (BLIS-style loops: NC columns of B packed for
// L3, KC x MC of A packed for L2, an MR x NR register tile), micro-kernel in xsimd batches.
//
// Every element of C is summed over K in the same order whatever the split into tiles or
// threads, so results are bit-identical for any thread count: threads split M or N, never K.
#include <algorithm>
#include <cstddef>

#include "sgp/core/aligned_buffer.hpp"
#include "sgp/core/parallel.hpp"
#include "sgp/core/simd.hpp"

namespace sgp::kernels {

namespace gemm_detail {

using simd::vec;
inline constexpr std::size_t NV = 2;                                                    // vectors per tile row
inline constexpr std::size_t NR = NV * simd::width;                                     // tile columns
inline constexpr std::size_t MR = simd::width >= 16 ? 12 : (simd::width >= 4 ? 6 : 4);  // tile rows
inline constexpr std::size_t KC = 256;
inline constexpr std::size_t MC = MR * 16;
inline constexpr std::size_t NC = NR * 64;

struct matrix {
    const float* p;
    std::size_t ld;
    bool trans;
    float at(std::size_t r, std::size_t c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of op(A) into MR-row panels, k-major, zero padded.
inline void pack_a(const matrix& a, std::size_t i0, std::size_t mc, std::size_t k0, std::size_t kc, float* out) {
    for (std::size_t ir = 0; ir < mc; ir += MR) {
        const std::size_t mr = std::min(MR, mc - ir);
        float* panel = out + ir * kc;
        if (!a.trans) {
            for (std::size_t i = 0; i < mr; ++i) {
                const float* src = a.p + (i0 + ir + i) * a.ld + k0;
                for (std::size_t k = 0; k < kc; ++k) panel[k * MR + i] = src[k];
            }
        } else {
            for (std::size_t k = 0; k < kc; ++k) {
                const float* src = a.p + (k0 + k) * a.ld + i0 + ir;
                for (std::size_t i = 0; i < mr; ++i) panel[k * MR + i] = src[i];
            }
        }
        for (std::size_t i = mr; i < MR; ++i)
            for (std::size_t k = 0; k < kc; ++k) panel[k * MR + i] = 0.f;
    }
}

// Packs rows [k0, k0+kc) x cols [j0, j0+nc) of op(B) into NR-column panels, zero padded.
inline void pack_b(const matrix& b, std::size_t k0, std::size_t kc, std::size_t j0, std::size_t nc, float* out) {
    for (std::size_t jr = 0; jr < nc; jr += NR) {
        const std::size_t nr = std::min(NR, nc - jr);
        float* panel = out + jr * kc;
        if (!b.trans) {
            for (std::size_t k = 0; k < kc; ++k) {
                const float* src = b.p + (k0 + k) * b.ld + j0 + jr;
                float* dst = panel + k * NR;
                std::size_t j = 0;
                for (; j < nr; ++j) dst[j] = src[j];
                for (; j < NR; ++j) dst[j] = 0.f;
            }
        } else {
            for (std::size_t j = 0; j < nr; ++j) {
                const float* src = b.p + (j0 + jr + j) * b.ld + k0;
                for (std::size_t k = 0; k < kc; ++k) panel[k * NR + j] = src[k];
            }
            for (std::size_t j = nr; j < NR; ++j)
                for (std::size_t k = 0; k < kc; ++k) panel[k * NR + j] = 0.f;
        }
    }
}

// acc(MR x NR) = sum_k a[k] (outer) b[k]; then C = acc or C += acc on the valid mr x nr part.
inline void micro_kernel(std::size_t kc, const float* a, const float* b, float* c, std::size_t ldc, std::size_t mr,
                         std::size_t nr, bool add) {
    vec acc[MR][NV];
#pragma GCC unroll 16
    for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (std::size_t j = 0; j < NV; ++j) acc[i][j] = vec(0.f);
    for (std::size_t k = 0; k < kc; ++k) {
        vec bv[NV];
#pragma GCC unroll 4
        for (std::size_t j = 0; j < NV; ++j) bv[j] = vec::load_aligned(b + k * NR + j * simd::width);
#pragma GCC unroll 16
        for (std::size_t i = 0; i < MR; ++i) {
            const vec av(a[k * MR + i]);
#pragma GCC unroll 4
            for (std::size_t j = 0; j < NV; ++j) acc[i][j] = simd::fma(av, bv[j], acc[i][j]);
        }
    }
    if (mr == MR && nr == NR) {
#pragma GCC unroll 16
        for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 4
            for (std::size_t j = 0; j < NV; ++j) {
                float* p = c + i * ldc + j * simd::width;
                (add ? acc[i][j] + vec::load_unaligned(p) : acc[i][j]).store_unaligned(p);
            }
        return;
    }
    alignas(64) float tile[MR * NR];
    for (std::size_t i = 0; i < MR; ++i)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j].store_aligned(tile + i * NR + j * simd::width);
    for (std::size_t i = 0; i < mr; ++i)
        for (std::size_t j = 0; j < nr; ++j)
            c[i * ldc + j] = add ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
}

// The blocked loops over rows [m0, m1) and columns [n0, n1) of C, on this thread.
inline void gemm_range(const matrix& a, const matrix& b, std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1,
                       std::size_t K, float* C, std::size_t ldc, bool accumulate) {
    thread_local aligned_buffer<float> apack, bpack;
    apack.reserve(MC * KC);
    bpack.reserve(KC * NC);
    for (std::size_t jc = n0; jc < n1; jc += NC) {
        const std::size_t nc = std::min(NC, n1 - jc);
        for (std::size_t pc = 0; pc < K; pc += KC) {
            const std::size_t kc = std::min(KC, K - pc);
            const bool add = accumulate || pc > 0;
            pack_b(b, pc, kc, jc, nc, bpack.data());
            for (std::size_t ic = m0; ic < m1; ic += MC) {
                const std::size_t mc = std::min(MC, m1 - ic);
                pack_a(a, ic, mc, pc, kc, apack.data());
                for (std::size_t jr = 0; jr < nc; jr += NR)
                    for (std::size_t ir = 0; ir < mc; ir += MR)
                        micro_kernel(kc, apack.data() + ir * kc, bpack.data() + jr * kc, C + (ic + ir) * ldc + jc + jr,
                                     ldc, std::min(MR, mc - ir), std::min(NR, nc - jr), add);
            }
        }
    }
}

}  // namespace gemm_detail

// C[M x N] = op(A)[M x K] * op(B)[K x N] (+ C if accumulate). lda/ldb/ldc are the row
// strides of A, B, C as stored (A is stored K x M when trans_a).
inline void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const float* A,
                 std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc, bool accumulate,
                 thread_pool* pool = nullptr) {
    using namespace gemm_detail;
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (!accumulate)
            for (std::size_t i = 0; i < M; ++i) std::fill_n(C + i * ldc, N, 0.f);
        return;
    }
    const matrix a{A, lda, trans_a}, b{B, ldb, trans_b};
    // Split the larger side of C between threads, in whole register tiles.
    if (N >= M)
        parallel_for(pool, N, NR,
                     [&](std::size_t n0, std::size_t n1) { gemm_range(a, b, 0, M, n0, n1, K, C, ldc, accumulate); });
    else
        parallel_for(pool, M, MR,
                     [&](std::size_t m0, std::size_t m1) { gemm_range(a, b, m0, m1, 0, N, K, C, ldc, accumulate); });
}

// The plain triple loop, for tests: the same contract as gemm().
inline void gemm_reference(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const float* A,
                           std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc,
                           bool accumulate) {
    const gemm_detail::matrix a{A, lda, trans_a}, b{B, ldb, trans_b};
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            double s = accumulate ? C[i * ldc + j] : 0.0;
            for (std::size_t k = 0; k < K; ++k) s += static_cast<double>(a.at(i, k)) * b.at(k, j);
            C[i * ldc + j] = static_cast<float>(s);
        }
}

}  // namespace sgp::kernels
